import assert from 'node:assert/strict';
import { test } from 'node:test';
import { insertIntoSection } from './benchmarks-md.ts';

const doc = [
  '# Benchmarks',
  '',
  '## TFTP (`pnpm bench tftp`, issue 8)',
  '',
  'method',
  '',
  '## TFTP run of A',
  '',
  '### Targets (issue 8)',
  '',
  'a',
  '',
  '## DHCP',
  '',
  '### DHCP run of A',
  '',
  '## Boot storm',
  '',
  '### Five real VMs',
  '',
  '#### Five real VMs: run of A',
  '',
  '## HTTP',
  '',
].join('\n');

test('a run goes at the end of its section, before the next section', () => {
  const tftp = insertIntoSection(doc, '## TFTP', '## TFTP run of B\n\nb');
  assert.ok(tftp.indexOf('## TFTP run of A') < tftp.indexOf('## TFTP run of B'), 'after the earlier runs');
  assert.ok(tftp.indexOf('## TFTP run of B') < tftp.indexOf('## DHCP'), 'a run heading of its own level stays inside');
  const dhcp = insertIntoSection(doc, '## DHCP', '### DHCP run of B');
  assert.ok(dhcp.indexOf('### DHCP run of B') < dhcp.indexOf('## Boot storm'));
  assert.ok(dhcp.indexOf('### DHCP run of A') < dhcp.indexOf('### DHCP run of B'));
});

test('a subsection ends at the next heading of its level or above', () => {
  const vms = insertIntoSection(doc, '### Five real VMs', '#### Five real VMs: run of B');
  assert.ok(vms.indexOf('run of A') < vms.indexOf('run of B'));
  assert.ok(vms.indexOf('run of B') < vms.indexOf('## HTTP'));
});

test('a missing section is made at the end with its intro, once', () => {
  const once = insertIntoSection(doc, '## Memory', '### Memory run of A', '## Memory\n\nwhat it is');
  assert.match(once, /## HTTP\n\n## Memory\n\nwhat it is\n\n### Memory run of A\n$/);
  const twice = insertIntoSection(once, '## Memory', '### Memory run of B', '## Memory\n\nwhat it is');
  assert.equal(twice.match(/^## Memory$/gm)?.length, 1);
  assert.ok(twice.trimEnd().endsWith('### Memory run of B'));
});
