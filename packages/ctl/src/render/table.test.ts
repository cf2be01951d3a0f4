import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Chalk } from 'chalk';
import { renderTable, type Column } from './table.ts';
import { plainTerminal } from './terminal.ts';

interface Row {
  name: string;
  state?: string;
}
const columns: Column<Row>[] = [
  { header: 'NAME', value: (row) => row.name },
  { header: 'STATE', value: (row) => row.state, style: (value, chalk) => chalk.red(value) },
];
const rows: Row[] = [{ name: 'a-long-name', state: 'failed' }, { name: 'b' }];
const ESC = '\u001b[';

describe('renderTable', () => {
  test('not a terminal: aligned columns, a header row, no borders, no escape codes', () => {
    assert.equal(
      renderTable(columns, rows, plainTerminal(false)),
      ['NAME          STATE', 'a-long-name   failed', 'b             <none>'].join('\n'),
    );
  });

  test('a terminal without colour: a boxed table and still no escape codes', () => {
    const text = renderTable(columns, rows, plainTerminal(true));
    assert.ok(!text.includes(ESC), text);
    assert.match(text, /┌/);
    assert.match(text, /│ a-long-name │ failed │/);
  });

  test('a terminal with colour: bold headers and styled cells, via chalk only', () => {
    const text = renderTable(columns, rows, { tty: true, chalk: new Chalk({ level: 1 }) });
    assert.ok(text.includes('\u001b[1mNAME\u001b[22m'), text);
    assert.ok(text.includes('\u001b[31mfailed\u001b[39m'), text);
    // cli-table3's own colouring (grey borders, red heads) is switched off.
    assert.ok(!text.includes('\u001b[90m'), text);
  });

  test('plain columns are measured without the styling', () => {
    const text = renderTable(columns, rows, { tty: false, chalk: new Chalk({ level: 1 }) });
    const lines = text
      .split('\n')
      .map((line) =>
        line
          .replaceAll(`${ESC}1m`, '')
          .replaceAll(`${ESC}22m`, '')
          .replaceAll(`${ESC}31m`, '')
          .replaceAll(`${ESC}39m`, ''),
      );
    assert.deepEqual(lines, ['NAME          STATE', 'a-long-name   failed', 'b             <none>']);
  });
});
