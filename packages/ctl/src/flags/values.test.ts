import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CliFailure } from '../failure.ts';
import { definedOnly, parseKeyValues, splitList } from './values.ts';

describe('splitList', () => {
  test('commas and repetition both work, blanks are dropped', () => {
    assert.deepEqual(splitList(['1.1.1.1, 8.8.8.8', '9.9.9.9', ',']), ['1.1.1.1', '8.8.8.8', '9.9.9.9']);
  });
  test('not given stays undefined; given empty is an empty list', () => {
    assert.equal(splitList(undefined), undefined);
    assert.deepEqual(splitList(['']), []);
  });
});

describe('parseKeyValues', () => {
  test('KEY=VALUE, the value may contain "=" and be empty', () => {
    assert.deepEqual(parseKeyValues(['a=1', 'b=x=y', 'c='], 'var'), { a: '1', b: 'x=y', c: '' });
  });
  test('a missing key or "=" is a usage error naming the flag', () => {
    for (const bad of ['novalue', '=1']) {
      assert.throws(
        () => parseKeyValues([bad], 'var'),
        (error: unknown) => error instanceof CliFailure && error.exitCode === 2 && error.message.startsWith('--var:'),
      );
    }
  });
});

test('definedOnly drops undefined but keeps null and empty values', () => {
  assert.deepEqual(definedOnly({ a: undefined, b: null, c: '', d: [] }), { b: null, c: '', d: [] });
});
