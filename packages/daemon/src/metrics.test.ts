import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMetrics } from './metrics.ts';

describe('metrics', () => {
  test('counters add per label set and render in the Prometheus text format', () => {
    const metrics = createMetrics();
    const dropped = metrics.counter('smelt_tftp_packets_dropped_total', 'Datagrams dropped, by reason');
    dropped.inc({ reason: 'truncated' });
    dropped.inc({ reason: 'truncated' }, 2);
    dropped.inc({ reason: 'opcode' });
    assert.equal(metrics.value('smelt_tftp_packets_dropped_total', { reason: 'truncated' }), 3);
    assert.equal(metrics.value('smelt_tftp_packets_dropped_total', { reason: 'never' }), 0);
    assert.equal(
      metrics.render(),
      [
        '# HELP smelt_tftp_packets_dropped_total Datagrams dropped, by reason',
        '# TYPE smelt_tftp_packets_dropped_total counter',
        'smelt_tftp_packets_dropped_total{reason="truncated"} 3',
        'smelt_tftp_packets_dropped_total{reason="opcode"} 1',
        '',
      ].join('\n'),
    );
  });

  test('a series resolved once counts into the same series as inc with equal labels', () => {
    const metrics = createMetrics();
    const received = metrics.counter('smelt_dhcp_received_total', 'DHCP requests received, by message type');
    const discovers = received.series({ type: 'discover' });
    discovers.inc();
    discovers.inc(4);
    received.inc({ type: 'discover' });
    received.series().inc();
    assert.equal(metrics.value('smelt_dhcp_received_total', { type: 'discover' }), 6);
    assert.equal(metrics.value('smelt_dhcp_received_total'), 1);
    assert.equal(metrics.value('smelt_dhcp_received_total', { type: 'request' }), 0);
  });

  test('gauges go up and down; label values are escaped', () => {
    const metrics = createMetrics();
    const active = metrics.gauge('smelt_tftp_transfers_active', 'Transfers in flight');
    active.inc();
    active.inc();
    active.dec();
    active.set(7, { peer: 'a"b\\c\nd' });
    assert.equal(metrics.value('smelt_tftp_transfers_active'), 1);
    assert.match(metrics.render(), /smelt_tftp_transfers_active\{peer="a\\"b\\\\c\\nd"\} 7/);
  });

  test('collectors run when the metrics are read, and not after they are removed', () => {
    const metrics = createMetrics();
    const leases = metrics.gauge('smelt_dhcp_leases', 'Addresses per subnet and state');
    let bound = 0;
    let runs = 0;
    const stop = metrics.onCollect(() => {
      runs++;
      leases.set(bound, { state: 'bound' });
    });
    assert.equal(runs, 0, 'nothing is counted until someone reads');
    bound = 3;
    assert.match(metrics.render(), /smelt_dhcp_leases\{state="bound"\} 3/);
    bound = 5;
    assert.equal(metrics.value('smelt_dhcp_leases', { state: 'bound' }), 5);
    assert.equal(runs, 2);
    stop();
    bound = 9;
    assert.equal(metrics.value('smelt_dhcp_leases', { state: 'bound' }), 5, 'the last value stays');
    assert.equal(runs, 2);
  });

  test('one name cannot be both a counter and a gauge', () => {
    const metrics = createMetrics();
    metrics.counter('x', 'x');
    assert.throws(() => metrics.gauge('x', 'x'), /already a counter/);
  });
});
