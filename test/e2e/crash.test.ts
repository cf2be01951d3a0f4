/**
 * Every write the API acknowledged survives `kill -9` in the middle of a burst of writes (issue 2's crash test).
 * The burst is bounded in count and time, and only goes to the daemon this test started on loopback.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { api } from '../harness/api.ts';
import { removeDir, startSmeltd, tempDir } from '../harness/smeltd.ts';

const MAX_REQUESTS = 4000;
const CONCURRENCY = 16;
const KILL_AFTER_ACKS = 400;

function macFor(i: number): string {
  const hex = i.toString(16).padStart(6, '0');
  return `02:00:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

const dataDir = tempDir('smelt-crash-');
after(() => {
  removeDir(dataDir);
});

test('acknowledged writes survive kill -9 during a write burst', async () => {
  const daemon = await startSmeltd({ dataDir });
  const acknowledged = new Set<string>();
  let next = 0;
  let killed = false;
  let failedAfterKill = 0;

  async function writer(): Promise<void> {
    while (next < MAX_REQUESTS && !(killed && failedAfterKill > CONCURRENCY)) {
      const mac = macFor(next++);
      try {
        const { status } = await api(daemon, 'POST', '/api/v1/machines', { mac, labels: { burst: 'yes' } });
        if (status === 201) acknowledged.add(mac);
        else assert.fail(`unexpected status ${status} for ${mac}`);
        if (!killed && acknowledged.size >= KILL_AFTER_ACKS) {
          killed = true;
          daemon.child.kill('SIGKILL');
        }
      } catch (error) {
        // After the kill, connections are refused or reset: those writes were never acknowledged.
        if (!killed) throw error;
        failedAfterKill++;
      }
    }
  }

  await Promise.all(Array.from({ length: CONCURRENCY }, writer));
  const exit = await daemon.stop('SIGKILL');
  assert.equal(exit.signal, 'SIGKILL', 'the daemon died by kill -9, not by itself');
  assert.ok(acknowledged.size >= KILL_AFTER_ACKS, `only ${acknowledged.size} writes were acknowledged`);

  const restarted = await startSmeltd({ dataDir });
  try {
    const stored = new Set<string>();
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const { status, json } = await api(restarted, 'GET', `/api/v1/machines?limit=1000${query}`);
      assert.equal(status, 200);
      const page = json as { items: { mac: string; labels: Record<string, string> }[]; next: string | null };
      for (const machine of page.items) {
        assert.deepEqual(machine.labels, { burst: 'yes' }, `machine ${machine.mac} was stored whole`);
        stored.add(machine.mac);
      }
      cursor = page.next;
    } while (cursor !== null);
    const lost = [...acknowledged].filter((mac) => !stored.has(mac));
    assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.size} acknowledged writes were lost`);
    console.log(`crash test: ${acknowledged.size} acknowledged, ${stored.size} stored after restart, 0 lost`);
  } finally {
    await restarted.stop();
  }
});
