/**
 * What the packet capture of a VM run shows (tcpdump -w on the lab's bridge, classic pcap, Ethernet): DHCP
 * messages by client, transaction and type, so that a client's retransmissions (the same xid and message type sent
 * again) are counted exactly; NAKs; TFTP read requests; and TCP SYNs to port 80, a SYN sent again for the same
 * connection being a retransmission. Only what the capture filter lets through is here (see captureFilter).
 */
import { readFileSync } from 'node:fs';

/** tcpdump's filter: DHCP, TFTP requests, and the SYNs and SYN-ACKs of HTTP connections (no bulk data). */
export const captureFilter =
  'udp port 67 or udp port 68 or udp port 69 or (tcp port 80 and tcp[tcpflags] & tcp-syn != 0)';
/** With --capture-http: every HTTP packet as well, to study a transfer afterwards. */
export const fullCaptureFilter = 'udp port 67 or udp port 68 or udp port 69 or tcp port 80';

export type DhcpType = 'discover' | 'offer' | 'request' | 'decline' | 'ack' | 'nak' | 'release' | 'inform' | 'other';

const dhcpTypes: Record<number, DhcpType> = {
  1: 'discover',
  2: 'offer',
  3: 'request',
  4: 'decline',
  5: 'ack',
  6: 'nak',
  7: 'release',
  8: 'inform',
};

export interface DhcpPacket {
  /** Seconds since the epoch (the capture's timestamp). */
  at: number;
  /** 1 BOOTREQUEST (client), 2 BOOTREPLY (server). */
  op: number;
  xid: number;
  chaddr: string;
  type: DhcpType;
  /** Who sent it, by option 60 / 77: "iPXE" (the firmware's iPXE), "udhcp" (the guest's busybox), or "other". */
  client: 'iPXE' | 'udhcp' | 'other';
}

export interface Capture {
  dhcp: DhcpPacket[];
  /** TFTP read requests (to port 69). */
  tftpRequests: number;
  /** SYNs to port 80 and SYN-ACKs from it, by the client's "address:port", in capture order. */
  syns: { at: number; client: string; synAck: boolean }[];
  /** Packets in the file, and those not understood (skipped). */
  packets: number;
  skipped: number;
}

const mac = (bytes: Buffer) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');

/** The DHCP message in a UDP payload (BOOTP with the magic cookie), or undefined. */
export function parseDhcp(payload: Buffer, at: number): DhcpPacket | undefined {
  if (payload.length < 240 || payload.readUInt32BE(236) !== 0x63825363) return undefined;
  const op = payload[0] ?? 0;
  const hlen = Math.min(16, payload[2] ?? 6);
  let type: DhcpType = 'other';
  let vendor = '';
  let userClass = '';
  for (let i = 240; i < payload.length;) {
    const code = payload[i] ?? 255;
    if (code === 255) break;
    if (code === 0) {
      i++;
      continue;
    }
    const length = payload[i + 1] ?? 0;
    const value = payload.subarray(i + 2, i + 2 + length);
    if (code === 53) type = dhcpTypes[value[0] ?? 0] ?? 'other';
    if (code === 60) vendor = value.toString('latin1');
    // Option 77 (RFC 3004) as iPXE sends it: the bare string "iPXE" (no length prefixes).
    if (code === 77) userClass = value.toString('latin1');
    i += 2 + length;
  }
  const client = userClass.includes('iPXE') ? 'iPXE' : vendor.startsWith('udhcp') ? 'udhcp' : 'other';
  return { at, op, xid: payload.readUInt32BE(4), chaddr: mac(payload.subarray(28, 28 + hlen)), type, client };
}

/** Reads a classic pcap file (either byte order, microsecond or nanosecond stamps) of Ethernet frames. */
export function readCapture(path: string): Capture {
  const file = readFileSync(path);
  const capture: Capture = { dhcp: [], tftpRequests: 0, syns: [], packets: 0, skipped: 0 };
  if (file.length < 24) return capture;
  const magic = file.readUInt32LE(0);
  const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!little && file.readUInt32BE(0) !== 0xa1b2c3d4 && file.readUInt32BE(0) !== 0xa1b23c4d)
    throw new Error(`${path}: not a pcap file`);
  const nano = (little ? magic : file.readUInt32BE(0)) === 0xa1b23c4d;
  const u32 = (offset: number) => (little ? file.readUInt32LE(offset) : file.readUInt32BE(offset));
  const linkType = u32(20);
  if (linkType !== 1) throw new Error(`${path}: link type ${linkType}, not Ethernet`);
  for (let offset = 24; offset + 16 <= file.length;) {
    const at = u32(offset) + u32(offset + 4) / (nano ? 1e9 : 1e6);
    const length = u32(offset + 8);
    const frame = file.subarray(offset + 16, offset + 16 + length);
    offset += 16 + length;
    capture.packets++;
    if (frame.length < 14 + 20) {
      capture.skipped++;
      continue;
    }
    let etherType = frame.readUInt16BE(12);
    let ip = 14;
    if (etherType === 0x8100) {
      etherType = frame.readUInt16BE(16);
      ip = 18;
    }
    if (etherType !== 0x0800) {
      capture.skipped++;
      continue;
    }
    const ihl = ((frame[ip] ?? 0) & 0x0f) * 4;
    const protocol = frame[ip + 9];
    const src = [...frame.subarray(ip + 12, ip + 16)].join('.');
    const dst = [...frame.subarray(ip + 16, ip + 20)].join('.');
    const l4 = ip + ihl;
    if (protocol === 17 && frame.length >= l4 + 8) {
      const dport = frame.readUInt16BE(l4 + 2);
      const payload = frame.subarray(l4 + 8);
      if (dport === 69) {
        if (payload.readUInt16BE(0) === 1) capture.tftpRequests++;
        continue;
      }
      const dhcp = parseDhcp(payload, at);
      if (dhcp) capture.dhcp.push(dhcp);
      else capture.skipped++;
    } else if (protocol === 6 && frame.length >= l4 + 14) {
      const sport = frame.readUInt16BE(l4);
      const dport = frame.readUInt16BE(l4 + 2);
      const flags = frame[l4 + 13] ?? 0;
      if ((flags & 0x02) !== 0) {
        const synAck = (flags & 0x10) !== 0;
        capture.syns.push({ at, client: synAck ? `${dst}:${dport}` : `${src}:${sport}`, synAck });
      }
    } else capture.skipped++;
  }
  return capture;
}

export interface DhcpSummary {
  /** Client messages sent (DISCOVER + REQUEST), by the firmware's iPXE and by the guest. */
  sent: { iPXE: number; udhcp: number; other: number };
  /** The same xid and type sent again by the same client: retransmissions, by the firmware's iPXE and the guest. */
  resent: { iPXE: number; udhcp: number; other: number };
  /**
   * Retransmissions sent before the server had replied to that transaction at all: the ones a server can be blamed
   * for. The others went out although the reply was already on the wire (a client too slow to take it in time).
   */
  resentUnanswered: number;
  naks: number;
  offers: number;
  acks: number;
}

/** DHCP of the given clients (MACs): messages, retransmissions, NAKs. */
export function summarizeDhcp(packets: readonly DhcpPacket[], macs: readonly string[]): DhcpSummary {
  const wanted = new Set(macs.map((m) => m.toLowerCase()));
  const summary: DhcpSummary = {
    sent: { iPXE: 0, udhcp: 0, other: 0 },
    resent: { iPXE: 0, udhcp: 0, other: 0 },
    resentUnanswered: 0,
    naks: 0,
    offers: 0,
    acks: 0,
  };
  const seen = new Set<string>();
  const replied = new Set<string>();
  for (const p of packets) {
    if (!wanted.has(p.chaddr)) continue;
    if (p.op === 2) {
      replied.add(`${p.chaddr} ${p.xid}`);
      if (p.type === 'nak') summary.naks++;
      if (p.type === 'offer') summary.offers++;
      if (p.type === 'ack') summary.acks++;
      continue;
    }
    if (p.type !== 'discover' && p.type !== 'request') continue;
    summary.sent[p.client]++;
    const key = `${p.chaddr} ${p.xid} ${p.type}`;
    if (!seen.has(key)) {
      seen.add(key);
      continue;
    }
    summary.resent[p.client]++;
    if (!replied.has(`${p.chaddr} ${p.xid}`)) summary.resentUnanswered++;
  }
  return summary;
}

/** SYNs sent again for the same connection (client address and port), and those sent before any SYN-ACK. */
export function synRetransmissions(syns: Capture['syns']): { resent: number; unanswered: number } {
  const seen = new Set<string>();
  const answered = new Set<string>();
  const result = { resent: 0, unanswered: 0 };
  for (const syn of syns) {
    if (syn.synAck) {
      answered.add(syn.client);
      continue;
    }
    if (!seen.has(syn.client)) {
      seen.add(syn.client);
      continue;
    }
    result.resent++;
    if (!answered.has(syn.client)) result.unanswered++;
  }
  return result;
}
