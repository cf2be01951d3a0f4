import { run } from '../lib/process.ts';

export const clientIds = ['curl', 'atftp'] as const;
export type ClientId = (typeof clientIds)[number];

export interface Download {
  host: string;
  port: number;
  file: string;
  out: string;
  blksize: number;
  windowsize: number;
  /** Give up (the client is killed) after this many seconds. */
  limitS: number;
}

const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

/**
 * One client download as a shell command. curl is lock-step (it sends no windowsize) and reports its own transfer
 * time (`%{time_total}`, which leaves out its ~12 ms start-up); atftp asks for the windowsize.
 */
export function downloadCommand(client: ClientId, d: Download): string {
  switch (client) {
    case 'curl':
      return [
        'curl -sS',
        `--max-time ${d.limitS}`,
        `--tftp-blksize ${d.blksize}`,
        `-o ${quote(d.out)}`,
        `-w 'curl_time_total=%{time_total}\\n'`,
        quote(`tftp://${d.host}:${d.port}/${d.file}`),
      ].join(' ');
    case 'atftp':
      return [
        `timeout -k 2 ${d.limitS}`,
        'atftp',
        `--option 'blksize ${d.blksize}'`,
        `--option 'windowsize ${d.windowsize}'`,
        `-g -r ${quote(d.file)} -l ${quote(d.out)}`,
        d.host,
        String(d.port),
      ].join(' ');
  }
}

/** The command as a person would type it (for BENCHMARKS.md). */
export function exampleCommand(client: ClientId): string {
  return client === 'curl'
    ? 'curl --tftp-blksize B -o OUT tftp://HOST:PORT/FILE'
    : "atftp --option 'blksize B' --option 'windowsize W' -g -r FILE -l OUT HOST PORT";
}

export async function clientVersion(client: ClientId): Promise<string> {
  const { stdout, stderr } = await run(client, client === 'curl' ? ['--version'] : ['-V']);
  return `${stdout}${stderr}`.split('\n')[0]?.trim() ?? '?';
}
