import type { Context } from 'koa';
import {
  PROBLEM_CONTENT_TYPE,
  problemCodes,
  problemTypeUri,
  type FieldError,
  type Problem,
  type ProblemCode,
} from '@smelt/shared/problem';
import type { Logger } from 'pino';
import { SmeltError } from '../errors.ts';

/** Koa's own HTTP errors (from the router and body limits) carry a status; they map onto our codes here. */
const codeForStatus: Record<number, ProblemCode> = {
  400: 'invalid_request',
  401: 'unauthorized',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  501: 'method_not_allowed',
  503: 'unavailable',
};

function isHttpError(error: unknown): error is Error & { status: number; expose?: boolean } {
  return error instanceof Error && typeof (error as { status?: unknown }).status === 'number';
}

/** The one place where an error becomes an HTTP response (DESIGN.md §5.4). */
export function writeProblem(ctx: Context, error: unknown, log: Logger): void {
  let code: ProblemCode = 'internal';
  let detail = 'the server failed; the details are in its log';
  let errors: readonly FieldError[] = [];
  if (error instanceof SmeltError) {
    ({ code, errors } = error);
    detail = error.message;
  } else if (isHttpError(error) && codeForStatus[error.status] !== undefined) {
    code = codeForStatus[error.status] ?? 'internal';
    detail = error.expose === false ? problemCodes[code].title : error.message;
  } else {
    log.error({ err: error, method: ctx.method, path: ctx.path }, 'request failed');
  }
  const { status, title } = problemCodes[code];
  const problem: Problem = {
    type: problemTypeUri(code),
    title,
    status,
    code,
    detail,
    instance: ctx.path,
    ...(errors.length > 0 && { errors: [...errors] }),
  };
  ctx.status = status;
  ctx.type = PROBLEM_CONTENT_TYPE;
  ctx.body = problem;
  if (code === 'unauthorized') ctx.set('WWW-Authenticate', 'Bearer realm="smelt"');
}
