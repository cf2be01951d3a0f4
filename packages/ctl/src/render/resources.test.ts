import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { boot, deployment, freeMachine, isoBoot, machine, now } from '../testdata/resources.ts';
import { bootColumns, describeBoot } from './boot.ts';
import { deploymentColumns, describeDeployment } from './deployment.ts';
import { renderSections } from './fields.ts';
import { describeMachine, machineColumns } from './machine.ts';
import { renderTable } from './table.ts';
import { plainTerminal } from './terminal.ts';

const plain = plainTerminal(false);
const headerOf = (text: string) => text.split('\n')[0]?.split(/\s{2,}/);

describe('boot columns', () => {
  test('NAME KIND SOURCE AGE; the source is the ISO when there is one', () => {
    const text = renderTable(bootColumns(now, false), [boot, isoBoot], plain);
    assert.deepEqual(headerOf(text), ['NAME', 'KIND', 'SOURCE', 'AGE']);
    assert.match(text, /debian12 +installer +\/srv\/debian\/linux +5m/);
    assert.match(text, /alma9 +installer +\/srv\/iso\/alma9\.iso +3d/);
  });

  test('wide adds INITRD and CMDLINE', () => {
    const text = renderTable(bootColumns(now, true), [boot], plain);
    assert.deepEqual(headerOf(text), ['NAME', 'KIND', 'SOURCE', 'AGE', 'INITRD', 'CMDLINE']);
    assert.match(text, /\/srv\/debian\/initrd\.gz +auto=true priority=critical$/);
  });
});

describe('deployment columns', () => {
  test('NAME MAC ADDRESS TYPE STATE AGE, and the wide ones', () => {
    assert.deepEqual(headerOf(renderTable(deploymentColumns(now, false), [deployment], plain)), [
      'NAME',
      'MAC',
      'ADDRESS',
      'TYPE',
      'STATE',
      'AGE',
    ]);
    const wide = renderTable(deploymentColumns(now, true), [deployment], plain);
    assert.deepEqual(headerOf(wide), ['NAME', 'MAC', 'ADDRESS', 'TYPE', 'STATE', 'AGE', 'BOOT', 'HOSTNAME', 'GATEWAY']);
    assert.match(wide, /web1 +aa:bb:cc:dd:ee:01 +10\.0\.0\.51 +preseed +provisioning +2h +debian12 +web1 +<none>$/);
  });
});

describe('machine columns', () => {
  test('MAC STATE ARCH VENDOR LAST SEEN DEPLOYMENT; missing values are <none>', () => {
    const text = renderTable(machineColumns(now, false), [machine, freeMachine], plain);
    assert.equal(
      text.split('\n')[0],
      'MAC                 STATE          ARCH          VENDOR       LAST SEEN   DEPLOYMENT',
    );
    assert.match(text, /aa:bb:cc:dd:ee:02 +free +<none> +<none> +<none> +<none>$/);
  });

  test('wide adds FIRST SEEN, UUID and LABELS', () => {
    const text = renderTable(machineColumns(now, true), [machine], plain);
    assert.match(text.split('\n')[0] ?? '', /DEPLOYMENT +FIRST SEEN +UUID +LABELS$/);
    assert.match(text, /web1 +24h +4c4c4544-0031-3410-8051-b4c04f4a4d32 +rack=r12$/);
  });
});

describe('describe', () => {
  test('a boot from an ISO says the kernel is inside it', () => {
    const text = renderSections(describeBoot(isoBoot, now), plain);
    assert.match(text, /^Name: +alma9$/m);
    assert.match(text, /^ {2}ISO: +\/srv\/iso\/alma9\.iso$/m);
    assert.match(text, /^ {2}Kernel \(in ISO\): +images\/pxeboot\/vmlinuz$/m);
  });

  test('a deployment shows effective settings and marks the inherited ones', () => {
    const defaults = { gateway: '10.0.0.1', dns: ['9.9.9.9'], vars: { role: 'db', tz: 'UTC' } };
    const text = renderSections(describeDeployment(deployment, defaults, now), plain);
    assert.match(text, /^ {2}Gateway: +10\.0\.0\.1 +\(default\)$/m);
    // Its own DNS wins over the default and is not marked.
    assert.match(text, /^ {2}DNS: +10\.0\.0\.1$/m);
    assert.match(text, /^ {2}Disk: +<none>$/m);
    assert.match(text, /^ {2}role: +web$/m);
    assert.match(text, /^ {2}tz: +UTC +\(default\)$/m);
  });

  test('a machine shows its wire facts and labels', () => {
    const text = renderSections(describeMachine(machine, now), plain);
    assert.match(text, /^Labels: +rack=r12$/m);
    assert.match(text, /^ {2}Vendor \(OUI\): +Supermicro$/m);
    assert.match(text, /^ {2}Last seen: +2025-01-10T11:59:30Z \(30s ago\)$/m);
  });
});
