import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, MalformedPacket, type DhcpPacket } from './packet.ts';

/** Test support: the captured client packets in testdata/ (see its README), decoded. */
export function fixture(name: string): DhcpPacket {
  const hex = readFileSync(join(import.meta.dirname, 'testdata', `${name}.hex`), 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join('')
    .trim();
  const packet = decode(Buffer.from(hex, 'hex'));
  if (packet instanceof MalformedPacket) throw new Error(`${name}: ${packet.reason}`);
  return packet;
}
