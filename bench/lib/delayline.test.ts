/**
 * The user-space delay line (delayline.py) on a real namespace link: every datagram of UDP GSO bursts (which
 * NFQUEUE splits into one queued packet per segment, read many per recvmmsg call) and of single sends reaches the
 * other end, each once and in order. Needs root, iptables-legacy and python3 (the test set-up installs both).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, test } from 'node:test';
import { cleanupAll } from './cleanup.ts';
import { addDelay, createNetns, createVethLink } from './netns.ts';
import { run, startService, waitFor } from './process.ts';

const missing =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces)'
    : !existsSync('/usr/sbin/iptables-legacy') && !existsSync('/sbin/iptables-legacy')
      ? 'needs iptables-legacy'
      : !existsSync('/usr/bin/python3')
        ? 'needs /usr/bin/python3'
        : undefined;

after(cleanupAll);

/** Receives COUNT datagrams (or stops after 10 s without one) and prints the first 4 bytes of each, one a line. */
const receiver = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(10)
print("ready", flush=True)
seen = []
try:
    while len(seen) < int(sys.argv[3]):
        seen.append(int.from_bytes(s.recv(2048)[:4], "big"))
except socket.timeout:
    pass
print(" ".join(map(str, seen)), flush=True)
`;

/** Sends BURSTS GSO sends of SEGMENTS datagrams of 1000 bytes each (numbered), then SINGLES single datagrams. */
const sender = `
import socket, sys
host, port, bursts, segments, singles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(17, 103, 1000)  # SOL_UDP, UDP_SEGMENT
n = 0
for _ in range(bursts):
    data = b"".join((n + i).to_bytes(4, "big") + bytes(996) for i in range(segments))
    s.sendto(data, (host, port))
    n += segments
s.setsockopt(17, 103, 0)
for _ in range(singles):
    s.sendto(n.to_bytes(4, "big") + bytes(996), (host, port))
    n += 1
`;

test(
  'delay line: every datagram of GSO bursts and single sends arrives once and in order',
  { skip: missing },
  async () => {
    const a = await createNetns('dl-a');
    const b = await createNetns('dl-b');
    const link = await createVethLink(a, b, { subnet: '10.247.231' });
    const delay = await addDelay(a, link.a.ifname, 1000, { forceDelayLine: true });
    const total = 3 * 44 + 20;
    const port = '7071';
    const [rc, ...ra] = b.wrap(['/usr/bin/python3', '-c', receiver, link.b.address, port, String(total)]);
    const received = startService('receiver', rc ?? 'ip', ra);
    await waitFor('the receiver to bind', () => received.output().includes('ready') || !received.alive());
    const sent = await run('ip', [
      'netns',
      'exec',
      a.name,
      '/usr/bin/python3',
      '-c',
      sender,
      link.b.address,
      port,
      '3',
      '44',
      '20',
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    await waitFor('the receiver to finish', () => !received.alive(), 30_000);
    const counters = await delay.stop();
    await b.remove();
    await a.remove();
    const lines = received.output().trim().split('\n');
    assert.equal(lines[0], 'ready', received.output());
    const seen = (lines[1] ?? '')
      .split(' ')
      .filter((word) => word !== '')
      .map(Number);
    assert.deepEqual(
      seen,
      Array.from({ length: total }, (_, i) => i),
      'every datagram, once, in order',
    );
    assert.match(counters, new RegExp(`packets=${String(total)} `), 'each segment went through the delay line');
  },
);
