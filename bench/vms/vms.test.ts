import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { httpKind, type Measurement } from './measure.ts';
import { parseDhcp, readCapture, summarizeDhcp, synRetransmissions } from './pcap.ts';
import { insertIntoSubsection, renderReport, SUBSECTION, type RunInfo } from './report.ts';
import { scriptPaths } from './servers.ts';

/** A BOOTP payload: op, xid, chaddr, and options (code, bytes) after the magic cookie. */
function bootp(op: number, xid: number, mac: string, options: [number, Buffer][]): Buffer {
  const fixed = Buffer.alloc(240);
  fixed[0] = op;
  fixed[1] = 1;
  fixed[2] = 6;
  fixed.writeUInt32BE(xid, 4);
  Buffer.from(mac.replaceAll(':', ''), 'hex').copy(fixed, 28);
  fixed.writeUInt32BE(0x63825363, 236);
  const parts = options.map(([code, value]) => Buffer.concat([Buffer.from([code, value.length]), value]));
  return Buffer.concat([fixed, ...parts, Buffer.from([255])]);
}

/** An Ethernet + IPv4 + UDP frame around `payload` (checksums left zero). */
function udpFrame(src: string, dport: number, payload: Buffer): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip[9] = 17;
  Buffer.from(src.split('.').map(Number)).copy(ip, 12);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(68, 0);
  udp.writeUInt16BE(dport, 2);
  return Buffer.concat([eth, ip, udp, payload]);
}

function tcpSyn(src: string, sport: number): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip[9] = 6;
  Buffer.from(src.split('.').map(Number)).copy(ip, 12);
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(sport, 0);
  tcp.writeUInt16BE(80, 2);
  tcp[13] = 0x02;
  return Buffer.concat([eth, ip, tcp]);
}

function pcapFile(frames: Buffer[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  const records = frames.map((frame, k) => {
    const record = Buffer.alloc(16);
    record.writeUInt32LE(1000 + k, 0);
    record.writeUInt32LE(frame.length, 8);
    record.writeUInt32LE(frame.length, 12);
    return Buffer.concat([record, frame]);
  });
  return Buffer.concat([header, ...records]);
}

test('DHCP in a capture: retransmissions are the same xid and type again, by client kind', () => {
  const mac = '52:54:00:5e:00:01';
  const ipxe: [number, Buffer][] = [[77, Buffer.from('iPXE')]];
  const udhcp: [number, Buffer][] = [[60, Buffer.from('udhcp 1.35.0')]];
  const frames = [
    udpFrame('0.0.0.0', 67, bootp(1, 7, mac, [[53, Buffer.from([1])], ...ipxe])),
    udpFrame('0.0.0.0', 67, bootp(1, 7, mac, [[53, Buffer.from([1])], ...ipxe])),
    udpFrame('10.67.0.1', 68, bootp(2, 7, mac, [[53, Buffer.from([2])]])),
    udpFrame('0.0.0.0', 67, bootp(1, 7, mac, [[53, Buffer.from([3])], ...ipxe])),
    udpFrame('10.67.0.1', 68, bootp(2, 7, mac, [[53, Buffer.from([5])]])),
    udpFrame('0.0.0.0', 67, bootp(1, 9, mac, [[53, Buffer.from([1])], ...udhcp])),
    udpFrame('10.67.0.1', 68, bootp(2, 9, mac, [[53, Buffer.from([2])]])),
    // Sent again although the OFFER was already on the wire: resent, but answered.
    udpFrame('0.0.0.0', 67, bootp(1, 9, mac, [[53, Buffer.from([1])], ...udhcp])),
    udpFrame('0.0.0.0', 67, bootp(1, 5, '52:54:00:99:99:99', [[53, Buffer.from([1])]])),
    tcpSyn('10.67.0.100', 4000),
    tcpSyn('10.67.0.100', 4000),
    tcpSyn('10.67.0.100', 4001),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'vms-pcap-'));
  try {
    const path = join(dir, 'c.pcap');
    writeFileSync(path, pcapFile(frames));
    const capture = readCapture(path);
    assert.equal(capture.packets, frames.length);
    assert.equal(capture.dhcp.length, 9);
    assert.equal(capture.dhcp[0]?.at, 1000);
    const summary = summarizeDhcp(capture.dhcp, [mac]);
    assert.deepEqual(summary.sent, { iPXE: 3, udhcp: 2, other: 0 });
    assert.deepEqual(summary.resent, { iPXE: 1, udhcp: 1, other: 0 });
    assert.equal(summary.resentUnanswered, 1);
    assert.equal(summary.offers, 2);
    assert.equal(summary.acks, 1);
    assert.deepEqual(synRetransmissions(capture.syns), { resent: 1, unanswered: 1 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(parseDhcp(Buffer.alloc(100), 0), undefined);
});

test("an installer script's kernel, initrd and answer-file paths; what a request was for", () => {
  const script = [
    '#!ipxe',
    'kernel http://10.67.0.1/boots/guest/kernel/vmlinuz initrd=i.gz console=ttyS0 url=http://10.67.0.1/answers/m/t/preseed.cfg',
    'initrd http://10.67.0.1/boots/guest/initrd/0/i.gz',
    'boot || goto failed',
  ].join('\n');
  assert.deepEqual(scriptPaths(script), {
    kernel: 'boots/guest/kernel/vmlinuz',
    initrd: 'boots/guest/initrd/0/i.gz',
    answers: 'answers/m/t/preseed.cfg',
  });
  assert.throws(() => scriptPaths('#!ipxe\nsleep 5\n'));
  assert.equal(httpKind('/boot/52-54-00-5e-00-01.ipxe'), 'script');
  assert.equal(httpKind('/boots/guest/kernel/vmlinuz'), 'kernel');
  assert.equal(httpKind('/boots/guest/initrd/0/i.gz'), 'initrd');
  assert.equal(httpKind('/answers/m/t/preseed.cfg'), 'answers');
  assert.equal(httpKind('/hooks/m/t/installed'), 'hook');
});

test('a run goes at the end of "Five real VMs", which is made inside "Boot storm" the first time', () => {
  const base = '# Benchmarks\n\n## Boot storm\n\nintro\n\n### Boot storm run of X\n\nstorm\n\n## Later\n\ntext\n';
  const once = insertIntoSubsection(base, '#### Five real VMs: run of A\n\nfirst');
  const lines = once.split('\n');
  const at = (text: string) => lines.findIndex((line) => line === text);
  assert.ok(at('### Boot storm run of X') < at(SUBSECTION));
  assert.ok(at(SUBSECTION) < at('#### Five real VMs: run of A'));
  assert.ok(at('#### Five real VMs: run of A') < at('## Later'));
  const twice = insertIntoSubsection(once, '#### Five real VMs: run of B\n\nsecond').split('\n');
  assert.equal(twice.filter((line) => line === SUBSECTION).length, 1);
  const b = twice.indexOf('#### Five real VMs: run of B');
  assert.ok(twice.indexOf('#### Five real VMs: run of A') < b && b < twice.indexOf('## Later'));
  assert.equal(twice[b - 1], '');
  assert.equal(twice.at(-1), '');
});

test("the report gives each run's CPU seconds (server, VMs, others) and splits the guest's time at the kernel", () => {
  const measurement = (server: 'smeltd' | 'reference', vmCpuS: number, foreignCpuS: number): Measurement => ({
    server,
    run: 0,
    vms: [{ mac: '52:54:00:5e:00:01', at: { linux: 20, kernel: 27, booted: 31 }, dhcp: {} }],
    booted: 1,
    failed: 0,
    allBootedS: 31,
    powerOnSpreadS: 0,
    dhcp: {
      sent: { iPXE: 2, udhcp: 2, other: 0 },
      resent: { iPXE: 0, udhcp: 0, other: 0 },
      resentUnanswered: 0,
      naks: 0,
      offers: 2,
      acks: 2,
    },
    tftpRequests: 0,
    httpRequests: 5,
    httpMs: { script: [1], kernel: [700], initrd: [3], answers: [1], hook: [3], other: [] },
    httpExtra: 0,
    httpNon2xx: 0,
    syns: { resent: 0, unanswered: 0 },
    retries: 0,
    retriesUnanswered: 0,
    serverCpuS: server === 'smeltd' ? 0.34 : 0.02,
    vmCpuS,
    busyAtStart: 0,
    othersDuring: [],
    foreignCpuShare: foreignCpuS / 62,
    foreignCpuS,
    complaints: [],
  });
  const info: RunInfo = {
    command: 'pnpm bench vms',
    started: new Date(0),
    elapsedS: 60,
    vms: 1,
    runs: 1,
    maxRunS: 300,
    memoryMb: 384,
    machine: 'M',
    load: { before: 0, after: 0 },
    versions: [],
    guest: 'G',
    lab: 'L',
    vmCommand: 'Q',
    serverCommands: [],
    referenceFiles: 'F',
    notes: [],
  };
  const report = renderReport([measurement('smeltd', 61.5, 1.2), measurement('reference', 60.2, 0.4)], info);
  // The cell under `heading` in the server's row of the table that has that column.
  const row = (server: string, heading: string) => {
    const lines = report.split('\n');
    const at = lines.findIndex((line) => line.startsWith('| server') && line.includes(` ${heading} `));
    const column = (lines[at] ?? '').split('|').findIndex((cell) => cell.trim() === heading);
    const line = lines.slice(at).find((candidate) => candidate.startsWith(`| ${server} (run 1)`));
    return line?.split('|')[column]?.trim();
  };
  assert.equal(row('smeltd', "VMs' CPU"), '62 s');
  assert.equal(row('smeltd', "others' CPU"), '1.2 s');
  assert.equal(row('dnsmasq + nginx', 'server CPU'), '0.0 s');
  assert.equal(row('smeltd', 'power-on → kernel'), '20.0 s / 20.0 s');
  assert.equal(row('smeltd', 'kernel → init'), '7.0 s / 7.0 s');
  assert.match(report, /other work's CPU during the run: 1\.2 s/);
});
