import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { peekReady } from '../net/libc.ts';
import { AckSpin } from './ack-spin.ts';
import { openUdpSocket } from './gso-socket.ts';

/** An AckSpin whose socket becomes ready after `polls` polls (never with Infinity), on a fake clock. */
function spinner(budgetMs: number, maxStreak: number) {
  let time = 0;
  let readyAfter = Infinity;
  let polls = 0;
  const spin = new AckSpin({
    ready: () => {
      polls++;
      time += 0.01; // each poll takes 10 µs
      return polls >= readyAfter;
    },
    now: () => time,
    budgetMs,
    maxStreak,
  });
  return {
    spin,
    /** Runs one wait with the ACK arriving at the nth poll; returns the polls it made. */
    wait(arrivesAt: number): number {
      polls = 0;
      readyAfter = arrivesAt;
      spin.wait();
      return polls;
    },
  };
}

describe('tftp ACK spin', () => {
  test('waits until the ACK is there, then returns at once', () => {
    const s = spinner(0.2, 16);
    assert.equal(s.wait(3), 3);
    assert.deepEqual({ hits: s.spin.stats.hits, misses: s.spin.stats.misses }, { hits: 1, misses: 0 });
  });

  test('gives up after its budget, then skips 1, 2, 4 ... up to 64 windows; a hit resets the pause', () => {
    const s = spinner(0.2, 1000);
    const polls = s.wait(Infinity);
    assert.ok(polls >= 20 && polls <= 22, `${polls} polls of 10 µs for a budget of 200 µs`);
    assert.equal(s.spin.stats.misses, 1);
    assert.ok(s.spin.stats.spentMs >= 0.2 && s.spin.stats.spentMs < 0.25);
    const pattern: number[] = [];
    for (let i = 0; i < 200; i++) pattern.push(s.wait(Infinity) > 0 ? 1 : 0);
    // After the first miss: skip 1, wait (miss), skip 2, wait, skip 4, wait, 8, 16, 32, 64, 64...
    const waits = pattern.flatMap((w, i) => (w ? [i] : []));
    assert.deepEqual(waits.slice(0, 8), [1, 4, 9, 18, 35, 68, 133, 198]);
    // A hit after the pauses: the next miss pauses for one window again.
    while (s.wait(1) === 0);
    assert.ok(s.wait(Infinity) >= 20, 'a miss');
    assert.equal(s.wait(Infinity), 0, 'one window without waiting');
    assert.ok(s.wait(Infinity) > 0);
  });

  test('lets the event loop go round after maxStreak waits in a row', () => {
    const s = spinner(0.2, 3);
    assert.deepEqual(
      [s.wait(1), s.wait(1), s.wait(1), s.wait(1), s.wait(1)].map((n) => n > 0),
      [true, true, true, false, true],
    );
  });

  test('peekReady sees a waiting datagram on a real socket without taking it', async () => {
    // Opened through libc, so its descriptor is known. dgram reads the socket only when the event loop polls it,
    // which cannot happen while this test polls synchronously, as the server does.
    const { socket, fd } = await openUdpSocket(4, '127.0.0.1', (host, _o, cb) => {
      cb(null, host, 4);
    });
    try {
      assert.equal(peekReady(fd), false, 'nothing sent yet');
      const sender = await openUdpSocket(4, '127.0.0.1', (host, _o, cb) => {
        cb(null, host, 4);
      });
      try {
        const got = new Promise<Buffer>((resolve) => socket.once('message', resolve));
        sender.socket.send(Buffer.from([0, 4, 0, 1]), socket.address().port, '127.0.0.1');
        // Spin (as the server does) until the kernel has it: the datagram is still there for dgram afterwards.
        const start = performance.now();
        while (!peekReady(fd) && performance.now() - start < 1000);
        assert.equal(peekReady(fd), true);
        assert.deepEqual([...(await got)], [0, 4, 0, 1], 'the peek left the datagram for dgram');
        assert.equal(peekReady(fd), false, 'taken by dgram');
      } finally {
        sender.socket.close();
      }
    } finally {
      socket.close();
    }
  });
});
