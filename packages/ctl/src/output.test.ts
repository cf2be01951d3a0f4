import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { formatDetails, formatList } from './output.ts';
import { bootColumns } from './render/boot.ts';
import { plainTerminal } from './render/terminal.ts';
import { boot, isoBoot, now } from './testdata/resources.ts';

const view = { items: [boot, isoBoot], columns: (wide: boolean) => bootColumns(now, wide), noun: 'boots' };
const terminal = plainTerminal(false);

describe('formatList', () => {
  test('json is the array of API objects', async () => {
    const { stdout } = await formatList(view, 'json', terminal);
    assert.deepEqual(JSON.parse(stdout ?? ''), [boot, isoBoot]);
  });

  test('yaml is the same data', async () => {
    const { stdout } = await formatList(view, 'yaml', terminal);
    assert.deepEqual(parse(stdout ?? ''), [boot, isoBoot]);
  });

  test('get NAME prints the object itself, not a one-item list', async () => {
    const { stdout } = await formatList({ ...view, items: [boot], single: true }, 'json', terminal);
    assert.deepEqual(JSON.parse(stdout ?? ''), boot);
  });

  test('an empty list: nothing on stdout, a note on stderr; but [] for json', async () => {
    assert.deepEqual(await formatList({ ...view, items: [] }, undefined, terminal), { stderr: 'No boots found.' });
    assert.deepEqual(await formatList({ ...view, items: [] }, 'json', terminal), { stdout: '[]' });
  });

  test('the default and wide are tables with different columns', async () => {
    const table = (await formatList(view, undefined, terminal)).stdout ?? '';
    const wide = (await formatList(view, 'wide', terminal)).stdout ?? '';
    assert.match(table, /^NAME +KIND +SOURCE +AGE$/m);
    assert.match(wide, /^NAME +KIND +SOURCE +AGE +INITRD +CMDLINE$/m);
  });
});

describe('formatDetails', () => {
  test('yaml of one object', async () => {
    assert.deepEqual(parse(await formatDetails(boot, () => [], 'yaml', terminal)), boot);
  });
});
