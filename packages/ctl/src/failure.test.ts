import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { problemCodes, type Problem, type ProblemCode } from '@smelt/shared/problem';
import { httpStatusFailure, problemFailure, unreachableFailure } from './failure.ts';

function problem(code: ProblemCode, extra: Partial<Problem> = {}): Problem {
  const { status, title } = problemCodes[code];
  return { type: `urn:smelt:problem:${code}`, title, status, code, detail: `detail of ${code}`, ...extra };
}

describe('problemFailure', () => {
  test('maps each problem code to the exit code of DESIGN.md §7', () => {
    const expected: Record<ProblemCode, number> = {
      invalid_request: 2,
      unauthorized: 1,
      forbidden: 1,
      not_found: 3,
      method_not_allowed: 2,
      conflict: 4,
      payload_too_large: 2,
      unsupported_media_type: 2,
      insufficient_storage: 1,
      internal: 1,
      unavailable: 1,
    };
    for (const [code, exitCode] of Object.entries(expected)) {
      assert.equal(problemFailure(problem(code as ProblemCode)).exitCode, exitCode, code);
    }
  });

  test('prints the detail, then one indented line per field error', () => {
    const failure = problemFailure(
      problem('invalid_request', {
        detail: 'the deployment is not valid',
        errors: [
          { in: 'body', path: 'address', message: '"x" is not an IPv4 address' },
          { in: 'query', path: '', message: 'unknown parameter' },
        ],
      }),
    );
    assert.deepEqual(failure.lines, [
      'Error: the deployment is not valid',
      '  body.address: "x" is not an IPv4 address',
      '  query: unknown parameter',
    ]);
  });
});

test('problemFailure: a field error that repeats the detail is printed once', () => {
  const failure = problemFailure(
    problem('invalid_request', {
      detail: 'body.kernel: no such file',
      errors: [{ in: 'body', path: 'kernel', message: 'no such file' }],
    }),
  );
  assert.deepEqual(failure.lines, ['Error: body.kernel: no such file']);
});

describe('httpStatusFailure', () => {
  test('a plain 404 still exits 3, and the first body line is shown', () => {
    const failure = httpStatusFailure('http://h/api/v1/x', 404, 'Not Found', 'no such thing\nmore');
    assert.equal(failure.exitCode, 3);
    assert.deepEqual(failure.lines, ['Error: http://h/api/v1/x answered 404 Not Found', '  no such thing']);
  });

  test('an unknown status is a server-side failure', () => {
    assert.equal(httpStatusFailure('http://h/', 502, 'Bad Gateway', '').exitCode, 1);
  });
});

describe('unreachableFailure', () => {
  test('names the server and the reason, exit 5', () => {
    const failure = unreachableFailure('http://127.0.0.1:9', 'ECONNREFUSED', 'connect ECONNREFUSED');
    assert.equal(failure.exitCode, 5);
    assert.deepEqual(failure.lines, [
      'Error: cannot reach smeltd at http://127.0.0.1:9: connection refused (ECONNREFUSED)',
    ]);
  });

  test('an unknown code keeps the original message', () => {
    assert.match(unreachableFailure('http://h', 'EWHATEVER', 'it broke').lines[0] ?? '', /http:\/\/h: it broke$/);
  });
});
