import { createSocket } from 'node:dgram';
import { parseMac } from '@smelt/shared/mac';

/**
 * Wake-on-LAN: the AMD "Magic Packet" — 6 bytes of 0xFF, then the target MAC 16 times, optionally followed by a
 * SecureOn password of 4 or 6 bytes — sent by UDP to a broadcast address on ports 9 (discard) and 7 (echo), the
 * two that NIC firmware and routers' directed-broadcast rules expect.
 */
export const WAKE_PORTS = [9, 7] as const;

/** "aa:bb:cc:dd:ee:ff" or "a1b2c3d4" style passwords: 4 or 6 bytes in hex, with or without separators. */
export function parseSecureOn(text: string): Buffer {
  const hex = text.replace(/[:.-]/g, '');
  if (!/^([0-9a-fA-F]{8}|[0-9a-fA-F]{12})$/.test(hex)) {
    throw new Error('a SecureOn password is 4 or 6 bytes in hex, e.g. 01:02:03:04:05:06');
  }
  return Buffer.from(hex, 'hex');
}

export function magicPacket(mac: string, password?: Buffer): Buffer {
  const address = Buffer.from(parseMac(mac).replaceAll(':', ''), 'hex');
  return Buffer.concat([
    Buffer.alloc(6, 0xff),
    ...Array.from({ length: 16 }, () => address),
    password ?? Buffer.alloc(0),
  ]);
}

/** Sends the packet to each address on ports 9 and 7; resolves to what was sent ("10.0.0.255:9"). */
export async function sendWake(packet: Buffer, addresses: readonly string[]): Promise<string[]> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.setBroadcast(true);
  const sent: string[] = [];
  try {
    for (const address of addresses) {
      for (const port of WAKE_PORTS) {
        await new Promise<void>((resolve, reject) => {
          socket.send(packet, port, address, (error) => {
            if (error) reject(error);
            else resolve();
          });
        });
        sent.push(`${address}:${String(port)}`);
      }
    }
  } finally {
    socket.close();
  }
  return sent;
}
