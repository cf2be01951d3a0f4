/**
 * A small TFTP client on node:dgram for what the stock clients cannot do: read the OACK and abort like OVMF,
 * check the exact error code a server sends, fetch netascii without converting it back, and send RFC 7440
 * windowed ACKs. Only for talking to a server the test started itself.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';

const RRQ = 1;
const WRQ = 2;
const DATA = 3;
const ACK = 4;
const ERROR = 5;
const OACK = 6;

export interface TftpError {
  code: number;
  message: string;
}

export interface GetResult {
  data: Buffer;
  /** The options the server acknowledged, when it sent an OACK. */
  oack?: Record<string, string>;
  /** The server's ERROR, if the transfer ended with one. */
  error?: TftpError;
  /** The port of the transfer (the server's TID). */
  serverPort?: number;
  /** Datagrams that came from somewhere other than the server's TID, or did not parse. */
  strays: number;
}

export function requestPacket(
  opcode: 1 | 2,
  file: string,
  mode = 'octet',
  options: Readonly<Record<string, string>> = {},
): Buffer {
  const parts = [file, mode, ...Object.entries(options).flat()].map((text) =>
    Buffer.concat([Buffer.from(text), Buffer.of(0)]),
  );
  return Buffer.concat([Buffer.of(0, opcode), ...parts]);
}

export function ackPacket(block: number): Buffer {
  return Buffer.of(0, ACK, (block >> 8) & 0xff, block & 0xff);
}

export function errorPacket(code: number, message: string): Buffer {
  return Buffer.concat([Buffer.of(0, ERROR, code >> 8, code & 0xff), Buffer.from(message), Buffer.of(0)]);
}

function parseOack(packet: Buffer): Record<string, string> {
  const fields = packet.subarray(2).toString('latin1').split('\0');
  fields.pop(); // after the last NUL
  const options: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) options[(fields[i] ?? '').toLowerCase()] = fields[i + 1] ?? '';
  return options;
}

function parseError(packet: Buffer): TftpError {
  return { code: packet.readUInt16BE(2), message: packet.subarray(4).toString('latin1').replace(/\0.*$/s, '') };
}

export interface GetOptions {
  host: string;
  port: number;
  file: string;
  mode?: 'octet' | 'netascii';
  options?: Readonly<Record<string, string>>;
  /** Read the OACK, then send this ERROR instead of ACK 0 (OVMF's size query). */
  abortAfterOack?: TftpError;
  /** Give up when nothing new arrives for this long (the client retransmits its last packet meanwhile). */
  idleMs?: number;
  /** Send the request twice at once, as a client does whose first answer was slow: still one transfer. */
  requestTwice?: boolean;
}

/**
 * Fetches one file. Windowed (RFC 7440) when the OACK carries windowsize: ACKs the last block of each window, and
 * on a gap ACKs the last block received in order so the server resends from there. Block numbers roll over.
 */
export function tftpGet(options: GetOptions): Promise<GetResult> {
  const { host, port, file, mode = 'octet', idleMs = 10_000 } = options;
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return Promise.reject(new RangeError(`port ${port}`));
  const socket: Socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
  return new Promise<GetResult>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0; // blocks received in order
    let blksize = 512;
    let windowsize = 1;
    let inWindow = 0;
    let gapAcked = false;
    let serverPort: number | undefined;
    let oack: Record<string, string> | undefined;
    let strays = 0;
    let last: Buffer = requestPacket(RRQ, file, mode, options.options);
    let lastActivity = Date.now();
    let ending = false;
    const finish = (error?: TftpError) => {
      ending = true;
      clearInterval(timer);
      socket.close();
      resolve({
        data: Buffer.concat(chunks),
        ...(oack ? { oack } : {}),
        ...(error ? { error } : {}),
        ...(serverPort === undefined ? {} : { serverPort }),
        strays,
      });
    };
    const send = (packet: Buffer) => {
      last = packet;
      socket.send(packet, serverPort ?? port, host);
    };
    // Retransmit the last packet once a second of silence; give up after idleMs.
    const timer = setInterval(() => {
      if (ending) return;
      const quiet = Date.now() - lastActivity;
      if (quiet > idleMs) {
        clearInterval(timer);
        socket.close();
        reject(new Error(`tftp get ${file}: nothing for ${idleMs} ms after ${received} blocks`));
      } else if (quiet > 1000) {
        socket.send(last, serverPort ?? port, host);
      }
    }, 1000);
    socket.on('message', (packet: Buffer, from: RemoteInfo) => {
      if (ending) return;
      if (serverPort === undefined && packet.length >= 2) serverPort = from.port;
      if (from.port !== serverPort || packet.length < 4) {
        strays++;
        return;
      }
      const opcode = packet.readUInt16BE(0);
      if (opcode === ERROR) {
        finish(parseError(packet));
        return;
      }
      if (opcode === OACK && received === 0 && oack === undefined) {
        lastActivity = Date.now();
        oack = parseOack(packet);
        blksize = Number(oack.blksize ?? 512);
        windowsize = Number(oack.windowsize ?? 1);
        if (options.abortAfterOack) {
          const { code, message } = options.abortAfterOack;
          ending = true;
          // Closed only once the datagram is out: a send is asynchronous, and close() would discard it.
          socket.send(errorPacket(code, message), from.port, host, () => {
            finish();
          });
          return;
        }
        send(ackPacket(0));
        return;
      }
      if (opcode !== DATA) {
        strays++;
        return;
      }
      const ahead = (packet.readUInt16BE(2) - received) & 0xffff;
      if (ahead !== 1) {
        // A duplicate (ahead 0, or behind) is ignored. A gap is ACKed once with the last block received in
        // order, which makes the server resend from there (RFC 7440 §4).
        if (ahead !== 0 && ahead < 0x8000 && !gapAcked) {
          gapAcked = true;
          inWindow = 0;
          send(ackPacket(received & 0xffff));
        }
        return;
      }
      gapAcked = false;
      lastActivity = Date.now();
      received++;
      inWindow++;
      const payload = packet.subarray(4);
      chunks.push(Buffer.from(payload));
      if (payload.length < blksize) {
        // The last ACK: closed only once it is out (close() would discard a send still pending).
        ending = true;
        last = ackPacket(received & 0xffff);
        clearInterval(timer);
        socket.send(last, from.port, host, () => {
          finish();
        });
        return;
      }
      if (inWindow >= windowsize) {
        inWindow = 0;
        send(ackPacket(received & 0xffff));
      }
    });
    socket.on('error', (error) => {
      clearInterval(timer);
      socket.close();
      reject(error);
    });
    socket.bind(0, isIPv6(host) ? '::' : undefined, () => {
      socket.send(last, port, host);
      if (options.requestTwice) socket.send(last, port, host);
    });
  });
}

/** Sends one datagram from a fresh socket and resolves to the first reply (undefined after waitMs of nothing). */
export function exchange(
  host: string,
  port: number,
  packet: Buffer,
  waitMs = 3000,
): Promise<{ packet: Buffer; port: number } | undefined> {
  const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, waitMs);
    socket.once('message', (reply: Buffer, from: RemoteInfo) => {
      clearTimeout(timer);
      socket.close();
      resolve({ packet: reply, port: from.port });
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      socket.close();
      reject(error);
    });
    socket.send(packet, port, host);
  });
}

/** The ERROR in a reply, or undefined when the reply is something else. */
export function errorIn(reply: { packet: Buffer } | undefined): TftpError | undefined {
  return reply && reply.packet.length >= 4 && reply.packet.readUInt16BE(0) === ERROR
    ? parseError(reply.packet)
    : undefined;
}

export const opcodes = { RRQ, WRQ, DATA, ACK, ERROR, OACK } as const;
