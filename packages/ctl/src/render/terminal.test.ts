import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { detectTerminal } from './terminal.ts';

describe('detectTerminal', () => {
  test('a terminal gets colour at the detected level', () => {
    const terminal = detectTerminal({ isTTY: true }, {}, 3);
    assert.equal(terminal.tty, true);
    assert.equal(terminal.chalk.level, 3);
  });

  test('NO_COLOR turns colour off, but not the table', () => {
    const terminal = detectTerminal({ isTTY: true }, { NO_COLOR: '1' }, 3);
    assert.equal(terminal.tty, true);
    assert.equal(terminal.chalk.level, 0);
    assert.equal(terminal.chalk.bold('x'), 'x');
  });

  test('an empty NO_COLOR does not count (no-color.org)', () => {
    assert.equal(detectTerminal({ isTTY: true }, { NO_COLOR: '' }, 2).chalk.level, 2);
  });

  test('a pipe never gets colour, whatever chalk detected', () => {
    const terminal = detectTerminal({ isTTY: false }, { FORCE_COLOR: '3' }, 3);
    assert.equal(terminal.tty, false);
    assert.equal(terminal.chalk.level, 0);
  });
});
