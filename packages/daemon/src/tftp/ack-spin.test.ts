import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { peekReady } from '../net/libc.ts';
import { AckSpin } from './ack-spin.ts';
import { openUdpSocket } from './gso-socket.ts';

/**
 * An AckSpin whose ACK never comes while it waits (each poll takes 10 µs of its fake clock), counting its polls and
 * the timers it sets (their delays, ms); the test moves `state.time` for the rest.
 */
function countingSpin() {
  const state = { time: 0, polls: 0, timers: [] as number[] };
  const spin = new AckSpin({
    ready: () => {
      state.polls++;
      state.time += 0.01;
      return false;
    },
    now: () => state.time,
    budgetMs: 0.2,
    maxStreak: 1000,
    later: (ms) => {
      state.timers.push(ms);
      return () => undefined;
    },
  });
  return { spin, state };
}

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

/**
 * A far peer on a fake clock (each poll takes 10 µs): `window(delay)` sends a window whose ACK is ready `delay` ms
 * later, fires the wait's timer when it is due (a little late, as timers are), then hears the ACK. It returns the
 * polls made, the timer's delay if one was set, and what wait() said at once.
 */
function farPeer(arrived?: () => void) {
  const clock = { time: 0, readyAt: Infinity, polls: 0 };
  const timers: { ms: number; run: () => void; cancelled: boolean }[] = [];
  const spin = new AckSpin({
    ready: () => {
      clock.polls++;
      clock.time += 0.01;
      return clock.time >= clock.readyAt;
    },
    now: () => clock.time,
    budgetMs: 0.2,
    maxStreak: 1000,
    later: (ms, run) => {
      const timer = { ms, run, cancelled: false };
      timers.push(timer);
      return () => {
        timer.cancelled = true;
      };
    },
    ...(arrived && { arrived }),
  });
  const window = (delay: number): { polls: number; timer?: number; waitedAtOnce: boolean } => {
    clock.polls = 0;
    timers.length = 0;
    const sentAt = clock.time;
    clock.readyAt = sentAt + delay;
    const waitedAtOnce = spin.wait();
    const timer = timers[0];
    if (timer && sentAt + timer.ms + 0.12 < clock.readyAt) {
      clock.time = sentAt + timer.ms + 0.12; // timers fire a little late
      timer.run();
    }
    clock.time = Math.max(clock.time, clock.readyAt);
    spin.heard();
    return { polls: clock.polls, waitedAtOnce, ...(timer ? { timer: timer.ms } : {}) };
  };
  return { spin, clock, timers, window };
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

  test('a far peer: after a few ACKs it waits from a timer set shortly before the ACK is due, not at once', () => {
    const { spin, timers, window } = farPeer();
    // Unknown delay: the usual wait right after the window, which misses (1.3 ms > 0.2), then pauses.
    const first = [window(1.3), window(1.3), window(1.3), window(1.3)];
    assert.equal(spin.stats.misses, 2, 'misses before the delay is known');
    assert.ok(first.every((w) => w.timer === undefined));
    assert.ok(Math.abs((spin.expectedMs ?? 0) - 1.3) < 1e-9, `expects ${String(spin.expectedMs)} ms`);
    // Known: once the pause after the misses is over, a timer of 1 ms, then polls from ~1.12 ms until the ACK at
    // 1.3 ms, a hit.
    let next = window(1.3);
    for (let i = 0; i < 4 && next.timer === undefined; i++) {
      assert.equal(next.polls, 0, 'paused windows do not wait');
      next = window(1.3);
    }
    assert.equal(next.timer, 1);
    assert.ok(next.polls > 0 && next.polls < 20, `${next.polls} polls`);
    assert.deepEqual({ hits: spin.stats.hits, delayed: spin.stats.delayed }, { hits: 1, delayed: 1 });
    // An ACK heard before the timer fires cancels it.
    timers.length = 0;
    spin.wait();
    const pending = timers[0];
    assert.ok(pending);
    spin.heard();
    assert.equal(pending.cancelled, true);
  });

  test('a far peer: the timer waits pause only after 3 misses in a row; a hit calls `arrived`', () => {
    let arrived = 0;
    const peer = farPeer(() => {
      arrived++;
    });
    const { spin, clock } = peer;
    /** One window whose ACK comes `delay` ms after it; true if a timer wait ran for it. */
    const window = (delay: number): boolean => {
      const w = peer.window(delay);
      assert.equal(w.waitedAtOnce, false, 'a far peer is never waited for at once');
      return w.timer !== undefined;
    };
    // Learn a delay of 1.4 ms (the misses of the waits at once pause them; they end once it is known).
    for (let i = 0; i < 12; i++) {
      spin.wait();
      clock.time += 1.4;
      spin.heard();
    }
    while (!window(1.4));
    assert.equal(arrived, 1, 'the delayed wait that saw the ACK said so');
    const misses = spin.stats.misses;
    // ACKs 3 ms late (past the wait's 1 ms at most): two misses in a row and the next window still waits...
    assert.deepEqual([window(3), window(3)], [true, true]);
    assert.equal(spin.stats.misses, misses + 2);
    // ...a hit clears the count...
    window(1.4);
    assert.equal(arrived, 2);
    assert.deepEqual([window(3), window(3), window(3)], [true, true, true]);
    // ...and the third miss in a row pauses the waits, for 1 window.
    assert.equal(window(1.4), false, 'paused');
    assert.equal(window(1.4), true);
    assert.equal(spin.stats.misses, misses + 5);
  });

  test('an ACK expected 1.15-1.25 ms after its window still gets a 1 ms timer, not a wait at once', () => {
    const { spin, state } = countingSpin();
    for (let i = 0; i < 80 && state.timers.length === 0; i++) {
      state.polls = 0;
      const known = spin.expectedMs !== undefined;
      spin.wait();
      state.time += 1.2;
      spin.heard();
      if (known) assert.equal(state.polls, 0, 'no wait at once once the delay is known');
    }
    assert.deepEqual(state.timers, [1]);
  });

  test('a far peer beyond 20 ms is not waited for; one under 1.25 ms gets the usual wait', () => {
    const make = (delay: number) => {
      const { spin, state } = countingSpin();
      const window = () => {
        spin.wait();
        state.time += delay;
        spin.heard();
      };
      // Teach it the delay without waits: heard() after each window, with the pauses that misses cause.
      for (let i = 0; i < 12; i++) window();
      state.polls = 0;
      state.timers.length = 0;
      // The next window that is not paused.
      for (let i = 0; i < 70 && state.polls === 0 && state.timers.length === 0; i++) window();
      return { polled: state.polls, timers: state.timers.length };
    };
    assert.deepEqual(make(25), { polled: 0, timers: 0 }, 'nothing for a 25 ms round trip');
    const near = make(1.1);
    assert.ok(near.polled > 0 && near.timers === 0, 'a wait at once for 1.1 ms (no whole millisecond to sleep)');
    const far = make(3);
    assert.ok(far.polled === 0 && far.timers === 1, 'a timer for 3 ms');
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
