import type { Context } from 'koa';
import { SmeltError } from '../errors.ts';

const MAX_BODY_BYTES = 1024 * 1024;

/** Reads a JSON request body: at most 1 MiB, and only application/json, so nothing else is half-understood. */
export async function readJsonBody(ctx: Context): Promise<unknown> {
  const length = Number(ctx.get('content-length') || '0');
  const chunked = ctx.get('transfer-encoding') !== '';
  if (length === 0 && !chunked) return undefined;
  if (!ctx.is('application/json', 'application/merge-patch+json')) {
    throw new SmeltError(
      'unsupported_media_type',
      `send the body as application/json, not ${ctx.get('content-type') || 'no content type'}`,
    );
  }
  if (length > MAX_BODY_BYTES)
    throw new SmeltError('payload_too_large', `the body is ${length} bytes; the limit is ${MAX_BODY_BYTES}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      // The rest of the body is left unread, so this connection cannot carry another request.
      ctx.set('Connection', 'close');
      throw new SmeltError('payload_too_large', `the body is over the limit of ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new SmeltError('invalid_request', `the body is not valid JSON: ${(error as Error).message}`, [
      { in: 'body', path: '', message: 'not valid JSON' },
    ]);
  }
}
