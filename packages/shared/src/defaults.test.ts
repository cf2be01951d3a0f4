import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { effectiveHostSettings, globalDefaultsSchema } from './defaults.ts';
import type { GlobalDefaults } from './defaults.ts';
import type { HostSettings } from './host.ts';

describe('effectiveHostSettings', () => {
  const defaults: GlobalDefaults = {
    gateway: '10.0.0.1',
    netmask: '255.255.255.0',
    dns: ['10.0.0.1'],
    user: 'ops',
    vars: { site: 'lab', tz: 'UTC' },
  };

  test("a deployment's own value overrides the default", () => {
    const result = effectiveHostSettings(defaults, { gateway: '10.0.0.254', dns: ['1.1.1.1', '8.8.8.8'] });
    assert.equal(result.gateway, '10.0.0.254');
    assert.deepEqual(result.dns, ['1.1.1.1', '8.8.8.8']);
  });

  test('an unset field inherits the default', () => {
    const result = effectiveHostSettings(defaults, { disk: '/dev/sda' });
    assert.deepEqual(result, {
      gateway: '10.0.0.1',
      netmask: '255.255.255.0',
      dns: ['10.0.0.1'],
      user: 'ops',
      disk: '/dev/sda',
      vars: { site: 'lab', tz: 'UTC' },
    });
  });

  test('a field explicitly undefined still inherits', () => {
    const own: HostSettings = { gateway: undefined, user: undefined };
    const result = effectiveHostSettings(defaults, own);
    assert.equal(result.gateway, '10.0.0.1');
    assert.equal(result.user, 'ops');
  });

  test('vars are merged key by key, the deployment winning', () => {
    const result = effectiveHostSettings(defaults, { vars: { tz: 'Europe/Berlin', role: 'web' } });
    assert.deepEqual(result.vars, { site: 'lab', tz: 'Europe/Berlin', role: 'web' });
  });

  test('vars only in the deployment, or in neither', () => {
    assert.deepEqual(effectiveHostSettings({}, { vars: { role: 'db' } }).vars, { role: 'db' });
    const none = effectiveHostSettings({ gateway: '10.0.0.1' }, {});
    assert.deepEqual(none, { gateway: '10.0.0.1' });
    assert.equal(Object.hasOwn(none, 'vars'), false);
  });

  test('an empty array is a value, not "unset"', () => {
    assert.deepEqual(effectiveHostSettings(defaults, { dns: [] }).dns, []);
  });

  test('the defaults are not changed', () => {
    const before = structuredClone(defaults);
    effectiveHostSettings(defaults, { gateway: '10.0.0.254', vars: { site: 'prod' } });
    assert.deepEqual(defaults, before);
  });
});

describe('globalDefaultsSchema', () => {
  test('is the host settings schema: strict and normalising', () => {
    assert.deepEqual(globalDefaultsSchema.parse({}), {});
    assert.deepEqual(globalDefaultsSchema.parse({ netmask: '/16' }), { netmask: '255.255.0.0' });
    assert.equal(globalDefaultsSchema.safeParse({ boot: 'debian' }).success, false);
    assert.equal(globalDefaultsSchema.safeParse({ vars: { 'not-an-identifier': 'x' } }).success, false);
  });
});
