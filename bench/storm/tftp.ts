/**
 * The simulated firmware's TFTP client (RFC 1350 + 2347/2348/2349): one read request as a PXE ROM sends it —
 * `octet`, `tsize 0`, `blksize 1468`, no windowsize — then lock-step DATA/ACK. Its own socket per transfer, bound
 * to the address the machine was leased (so that the server sees one client per machine, as on a real segment);
 * the server answers from a new port (its TID), which the transfer then talks to.
 *
 * Retransmission as firmware does it: when nothing new arrives within the current timeout, the last packet (the
 * RRQ, or the last ACK) is sent again and the next timeout taken from the schedule; a new block resets it. A DATA
 * block already acknowledged is acknowledged again (our ACK was lost, or the server retransmitted early). Every
 * byte is compared with the file the server was given.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

export const OP_RRQ = 1;
export const OP_DATA = 3;
export const OP_ACK = 4;
export const OP_ERROR = 5;
export const OP_OACK = 6;

export function encodeRrq(file: string, options: Record<string, string>): Buffer {
  const parts = [file, 'octet', ...Object.entries(options).flat()];
  const body = Buffer.from(parts.map((part) => `${part}\0`).join(''), 'latin1');
  return Buffer.concat([Uint8Array.of(0, OP_RRQ), body]);
}

export function encodeAck(block: number): Buffer {
  return Buffer.from([0, OP_ACK, (block >>> 8) & 255, block & 255]);
}

export function encodeError(code: number, message: string): Buffer {
  return Buffer.concat([Uint8Array.of(0, OP_ERROR, code >>> 8, code & 255), Buffer.from(`${message}\0`, 'latin1')]);
}

export type TftpPacket =
  | { op: typeof OP_DATA; block: number; data: Buffer }
  | { op: typeof OP_ERROR; code: number; message: string }
  | { op: typeof OP_OACK; options: Record<string, string> }
  | { op: 'other'; code: number };

/** Decodes what a server sends a reader; throws on a packet too short to be one. */
export function decodeServerPacket(bytes: Buffer): TftpPacket {
  if (bytes.length < 2) throw new Error(`a ${bytes.length}-byte datagram`);
  const op = bytes.readUInt16BE(0);
  if (op === OP_DATA) {
    if (bytes.length < 4) throw new Error('a DATA packet without a block number');
    return { op, block: bytes.readUInt16BE(2), data: bytes.subarray(4) };
  }
  if (op === OP_ERROR) {
    if (bytes.length < 4) throw new Error('an ERROR packet without a code');
    const end = bytes.indexOf(0, 4);
    return { op, code: bytes.readUInt16BE(2), message: bytes.toString('latin1', 4, end === -1 ? bytes.length : end) };
  }
  if (op === OP_OACK) {
    const fields = bytes.toString('latin1', 2).split('\0');
    const options: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i];
      if (name) options[name.toLowerCase()] = fields[i + 1] ?? '';
    }
    return { op, options };
  }
  return { op: 'other', code: op };
}

export interface TftpGetOptions {
  /** The machine's address (bound) and the server's. */
  local: string;
  server: string;
  port: number;
  file: string;
  blksize: number;
  /** The bytes the server must send. */
  expected: Buffer;
  /** Waits in ms after each transmission of one packet; its length is how many times a packet is sent. */
  schedule: readonly number[];
}

export interface TftpGetResult {
  ok: boolean;
  /** Why it failed: a stable text, counted in the report; detail has the particulars of this transfer. */
  reason?: string;
  detail?: string;
  bytes: number;
  /** Our retransmissions (RRQ or ACK sent again on a timeout). */
  retries: number;
  /** DATA blocks received a second time (the server retransmitted). */
  duplicates: number;
  /** The blksize the transfer ran with. */
  blksize: number;
}

/** One download; never rejects (a failure is a result with ok false). */
export function tftpGet(o: TftpGetOptions): Promise<TftpGetResult> {
  return new Promise((resolve) => {
    const result: TftpGetResult = { ok: false, bytes: 0, retries: 0, duplicates: 0, blksize: 512 };
    const socket: Socket = createSocket('udp4');
    let tid = 0;
    /** The next block wanted (full number, not mod 65536). */
    let expectedBlock = 1;
    let last: Buffer = encodeRrq(o.file, { tsize: '0', blksize: String(o.blksize) });
    let lastPort = o.port;
    let attempt = 0;
    let timer: NodeJS.Timeout | undefined;
    let done = false;

    /**
     * Ends the transfer. `lastWord` (the final ACK, or an ERROR) is sent first and the socket closed only once it has
     * gone: node:dgram resolves the address of every send on the next tick, so a close() right after send() drops it.
     */
    const finish = (reason?: string, detail?: string, lastWord?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      result.ok = reason === undefined;
      if (reason !== undefined) result.reason = reason;
      if (detail !== undefined) result.detail = detail;
      const close = () => {
        try {
          socket.close();
        } catch {
          // already closed
        }
      };
      if (lastWord && tid !== 0) socket.send(lastWord, tid, o.server, close);
      else close();
      resolve(result);
    };
    const send = (packet: Buffer, port: number) => {
      last = packet;
      lastPort = port;
      socket.send(packet, port, o.server, (error) => {
        if (error) finish('send failed', error.message);
      });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(expire, o.schedule[attempt] ?? 1000);
    };
    const expire = () => {
      if (done) return;
      if (attempt + 1 >= o.schedule.length) {
        const what = tid === 0 ? 'no answer to the RRQ' : 'DATA stopped';
        finish(`${what} (${o.schedule.length} transmissions)`, `waiting for block ${expectedBlock}`);
        return;
      }
      attempt++;
      result.retries++;
      send(last, lastPort);
      arm();
    };
    const progress = () => {
      attempt = 0;
      arm();
    };

    socket.on('message', (bytes: Buffer, from: RemoteInfo) => {
      if (done || from.address !== o.server) return;
      if (tid === 0) tid = from.port;
      else if (from.port !== tid) {
        socket.send(encodeError(5, 'Unknown transfer ID'), from.port, o.server);
        return;
      }
      let packet: TftpPacket;
      try {
        packet = decodeServerPacket(bytes);
      } catch (error) {
        finish('malformed packet', error instanceof Error ? error.message : String(error));
        return;
      }
      if (packet.op === OP_ERROR) {
        finish(`ERROR ${packet.code}: ${packet.message}`);
        return;
      }
      if (packet.op === OP_OACK) {
        if (expectedBlock !== 1) return; // a late duplicate
        const blksize = Number(packet.options.blksize ?? 512);
        if (!Number.isInteger(blksize) || blksize < 8 || blksize > o.blksize) {
          finish(
            'OACK with a bad blksize',
            `blksize ${packet.options.blksize ?? '?'}, asked ${o.blksize}`,
            encodeError(8, 'bad blksize'),
          );
          return;
        }
        const tsize = packet.options.tsize;
        if (tsize !== undefined && Number(tsize) !== o.expected.length) {
          finish(
            'OACK with a wrong tsize',
            `tsize ${tsize}, the file has ${o.expected.length} bytes`,
            encodeError(8, 'bad tsize'),
          );
          return;
        }
        result.blksize = blksize;
        send(encodeAck(0), tid);
        progress();
        return;
      }
      if (packet.op !== OP_DATA) {
        finish('unexpected opcode', String(packet.code));
        return;
      }
      const wanted = expectedBlock & 0xffff;
      if (packet.block !== wanted) {
        // An earlier block again: acknowledge it again (lock-step recovery), never the block we wait for.
        result.duplicates++;
        socket.send(encodeAck(packet.block), tid, o.server);
        return;
      }
      const offset = (expectedBlock - 1) * result.blksize;
      const data = packet.data;
      if (data.length > result.blksize) {
        finish('DATA longer than blksize', `${data.length} bytes, blksize ${result.blksize}`);
        return;
      }
      if (offset + data.length > o.expected.length || !data.equals(o.expected.subarray(offset, offset + data.length))) {
        finish('content differs from the file', `block ${expectedBlock}`, encodeError(0, 'corrupt'));
        return;
      }
      result.bytes = offset + data.length;
      if (data.length < result.blksize) {
        // The last block: its ACK goes out before the socket closes (else the server retransmits and gives up).
        if (result.bytes !== o.expected.length)
          finish('file too short', `${result.bytes} of ${o.expected.length} bytes`, encodeAck(packet.block));
        else finish(undefined, undefined, encodeAck(packet.block));
        return;
      }
      send(encodeAck(packet.block), tid);
      expectedBlock++;
      progress();
    });
    socket.on('error', (error) => {
      finish('socket error', error.message);
    });
    socket.bind({ address: o.local, port: 0 }, () => {
      send(last, lastPort);
      arm();
    });
  });
}
