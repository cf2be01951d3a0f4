import { eventSchema, type SmeltEvent } from '@smelt/shared/event';
import got, { RequestError } from 'got';
import type { Connection } from './connection.ts';
import { CliFailure, exitCodes, unreachableFailure } from './failure.ts';

/**
 * Follows GET /api/v1/events as Server-Sent Events until the server closes or the process is stopped, calling
 * `onEvent` for each event. Resumes after `after` (a sequence number).
 */
export async function followEvents(
  connection: Connection,
  query: { mac?: string | undefined; type?: string | undefined; after?: number | undefined },
  onEvent: (event: SmeltEvent) => void,
): Promise<void> {
  const searchParams: Record<string, string> = {};
  if (query.mac !== undefined) searchParams.mac = query.mac;
  if (query.type !== undefined) searchParams.type = query.type;
  if (query.after !== undefined) searchParams.after = String(query.after);
  const stream = got.stream(`${connection.server}/api/v1/events`, {
    searchParams,
    headers: {
      accept: 'text/event-stream',
      ...(connection.token ? { authorization: `Bearer ${connection.token}` } : {}),
    },
    retry: { limit: 0 },
    throwHttpErrors: false,
  });
  let buffer = '';
  let failed: CliFailure | undefined;
  stream.on('response', (response: { statusCode: number }) => {
    if (response.statusCode !== 200) {
      failed = new CliFailure(response.statusCode === 401 ? exitCodes.serverFailure : exitCodes.serverFailure, [
        `the event stream was refused: HTTP ${String(response.statusCode)}${response.statusCode === 401 ? ' (check the token)' : ''}`,
      ]);
      stream.destroy();
    }
  });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      buffer += chunk.toString('utf8');
      // SSE: events end with a blank line; only `data:` lines matter here (the id is inside the JSON).
      for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (data === '') continue;
        const parsed = eventSchema.safeParse(JSON.parse(data));
        if (parsed.success) onEvent(parsed.data);
      }
    }
  } catch (error) {
    if (failed) throw failed;
    if (error instanceof RequestError) throw unreachableFailure(connection.server, error.code, error.message);
    throw error;
  }
  if (failed) throw failed;
}
