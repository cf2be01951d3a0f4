import type { FieldError, ProblemCode } from '@smelt/shared/problem';

/**
 * The one error type handlers throw on purpose. Its code decides the HTTP status and problem+json shape in
 * api/problem.ts, and smeltctl's exit code; nothing else maps errors.
 */
export class SmeltError extends Error {
  readonly code: ProblemCode;
  readonly errors: readonly FieldError[];

  constructor(code: ProblemCode, detail: string, errors: readonly FieldError[] = []) {
    super(detail);
    this.name = 'SmeltError';
    this.code = code;
    this.errors = errors;
  }
}

export function notFound(what: string, id: string): SmeltError {
  return new SmeltError('not_found', `no ${what} named "${id}"`);
}

export function conflict(detail: string): SmeltError {
  return new SmeltError('conflict', detail);
}

/** A request whose fields are individually valid but wrong together or against the current state. */
export function invalidField(where: FieldError['in'], path: string, message: string): SmeltError {
  return new SmeltError('invalid_request', `${where}.${path}: ${message}`, [{ in: where, path, message }]);
}
