import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeBatch, encodeBatch } from './batch-wire.ts';

test('a batch survives the trip to the worker: keys and values of any text, deletes, ifVersion', () => {
  const ops = [
    { collection: 'leases' as const, key: '10.0.0.1', value: { mac: 'aa:bb', note: 'a\nb c "q" \u00e9 \u{1f600}' } },
    { collection: 'events' as const, key: '000000000001' },
    { collection: 'machines' as const, key: 'odd key\nwith 3 spaces -', value: 0, ifVersion: 0 },
    { collection: 'deployments' as const, key: '', value: [], ifVersion: 42 },
  ];
  assert.deepEqual(decodeBatch(encodeBatch(ops)), [
    { collection: 'leases', key: '10.0.0.1', json: JSON.stringify(ops[0]?.value) },
    { collection: 'events', key: '000000000001' },
    { collection: 'machines', key: 'odd key\nwith 3 spaces -', json: '0', ifVersion: 0 },
    { collection: 'deployments', key: '', json: '[]', ifVersion: 42 },
  ]);
  assert.deepEqual(decodeBatch(encodeBatch([])), []);
});

test('text encodeBatch cannot have made is refused', () => {
  assert.throws(() => decodeBatch('leases - 3'), /malformed store batch/);
  assert.throws(() => decodeBatch('leases - 30 2\nab{}'), /malformed store batch/);
  assert.throws(() => decodeBatch('leases - x -\nab'), /malformed store batch/);
});
