/**
 * What a TFTP server agrees to: sends a read request with blksize, windowsize and tsize, reads the answer (OACK,
 * or DATA from a server that ignores options), then aborts the transfer with an ERROR packet, as OVMF does after
 * reading tsize. Also the readiness check for a server that was just started (retries until `waitMs`).
 *
 * As a program (run inside a client namespace): node bench/tftp/probe.ts HOST PORT FILE WAIT_MS BLKSIZE:WINDOW...
 * prints one JSON array of ProbeResult.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

export interface ProbeResult {
  blksize: number;
  windowsize: number;
  reply: 'oack' | 'data' | 'error' | 'timeout';
  /** Options the server acknowledged (OACK), lower-case names. */
  options: Record<string, string>;
  /** Effective values: what was acknowledged, else the RFC 1350 defaults (512, lock-step). */
  agreedBlksize: number;
  agreedWindowsize: number;
  error?: string;
  /** Request to first answer, milliseconds (a round trip plus the server's work to open the file). */
  rttMs: number;
}

function rrq(file: string, options: Record<string, string>): Buffer {
  const parts = [file, 'octet', ...Object.entries(options).flat()];
  return Buffer.concat([Buffer.from([0, 1]), ...parts.map((part) => Buffer.from(`${part}\0`, 'latin1'))]);
}

function parseOack(packet: Buffer): Record<string, string> {
  const fields = packet.subarray(2).toString('latin1').split('\0');
  const options: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    if (name) options[name.toLowerCase()] = fields[i + 1] ?? '';
  }
  return options;
}

function once(socket: Socket, timeoutMs: number): Promise<{ message: Buffer; rinfo: RemoteInfo } | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      resolve(undefined);
    }, timeoutMs);
    const onMessage = (message: Buffer, rinfo: RemoteInfo) => {
      clearTimeout(timer);
      resolve({ message, rinfo });
    };
    socket.once('message', onMessage);
  });
}

export async function probe(
  host: string,
  port: number,
  file: string,
  blksize: number,
  windowsize: number,
  waitMs = 2000,
): Promise<ProbeResult> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, resolve));
  const request = rrq(file, { blksize: String(blksize), windowsize: String(windowsize), tsize: '0' });
  const deadline = Date.now() + waitMs;
  const base = { blksize, windowsize, options: {}, agreedBlksize: 512, agreedWindowsize: 1 };
  try {
    for (;;) {
      const sent = performance.now();
      socket.send(request, port, host);
      const answer = await once(socket, Math.min(500, Math.max(50, deadline - Date.now())));
      const rttMs = performance.now() - sent;
      if (!answer) {
        if (Date.now() < deadline) continue;
        return { ...base, reply: 'timeout', rttMs };
      }
      const { message, rinfo } = answer;
      const abort = Buffer.concat([Buffer.from([0, 5, 0, 0]), Buffer.from('bench probe done\0', 'latin1')]);
      const opcode = message.readUInt16BE(0);
      if (opcode === 5) {
        return { ...base, reply: 'error', error: message.subarray(4).toString('latin1').replace(/\0.*$/, ''), rttMs };
      }
      socket.send(abort, rinfo.port, rinfo.address);
      if (opcode === 6) {
        const options = parseOack(message);
        return {
          ...base,
          reply: 'oack',
          options,
          agreedBlksize: Number(options.blksize ?? 512),
          agreedWindowsize: Number(options.windowsize ?? 1),
          rttMs,
        };
      }
      return { ...base, reply: 'data', rttMs };
    }
  } finally {
    // Let the abort leave before the socket goes.
    await new Promise((resolve) => setTimeout(resolve, 5));
    socket.close();
  }
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const [host = '', port = '', file = '', waitMs = '2000', ...sets] = process.argv.slice(2);
  const results: ProbeResult[] = [];
  let wait = Number(waitMs);
  for (const set of sets) {
    const [blksize = '512', windowsize = '1'] = set.split(':');
    const result = await probe(host, Number(port), file, Number(blksize), Number(windowsize), wait);
    results.push(result);
    wait = Math.min(wait, 2000); // only the first probe waits for a server that is still starting
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
}
