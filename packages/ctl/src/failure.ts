import { problemCodes, type FieldError, type Problem } from '@smelt/shared/problem';

/** DESIGN.md §7: the exit codes scripts can rely on. */
export const exitCodes = {
  ok: 0,
  serverFailure: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  unreachable: 5,
} as const;

/**
 * Everything smeltctl reports as a failure: the lines to print on stderr (the first starts with "Error: ") and the
 * exit code. Commands throw it; the base command prints it without a stack trace.
 */
export class CliFailure extends Error {
  readonly exitCode: number;
  readonly lines: readonly string[];
  constructor(exitCode: number, lines: readonly [string, ...string[]]) {
    super(lines[0]);
    this.name = 'CliFailure';
    this.exitCode = exitCode;
    this.lines = [`Error: ${lines[0]}`, ...lines.slice(1)];
  }
}

export function usageFailure(message: string, ...more: string[]): CliFailure {
  return new CliFailure(exitCodes.usage, [message, ...more]);
}

/** One indented line per field error, `  body.address: "x" is not an IPv4 address`. */
export function fieldErrorLines(errors: readonly FieldError[]): string[] {
  return errors.map((error) => `  ${error.in}${error.path ? `.${error.path}` : ''}: ${error.message}`);
}

/**
 * A problem+json answer from smeltd, with the exit code its code maps to in the shared table. A field error that
 * only repeats the detail (smeltd's detail for a single wrong field is that field's message) is not printed twice.
 */
export function problemFailure(problem: Problem): CliFailure {
  const detail = problem.detail || problem.title;
  const fieldLines = fieldErrorLines(problem.errors ?? []).filter((line) => line.trim() !== detail);
  return new CliFailure(problemCodes[problem.code].exitCode, [detail, ...fieldLines]);
}

/**
 * An HTTP error that is not problem+json (a proxy in between, or not smeltd at all): the exit code comes from the
 * problem code with the same status, so a 404 still means "not found" to a script.
 */
export function httpStatusFailure(url: string, status: number, statusText: string, body: string): CliFailure {
  const known = Object.values(problemCodes).find((code) => code.status === status);
  const firstLine = body.trim().split('\n', 1)[0]?.slice(0, 200);
  return new CliFailure(known?.exitCode ?? exitCodes.serverFailure, [
    `${url} answered ${status} ${statusText}`.trimEnd(),
    ...(firstLine ? [`  ${firstLine}`] : []),
  ]);
}

/** Network-level error codes in words an operator recognises; anything else keeps its own message. */
const reasons: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (temporary)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  EPROTO: 'TLS handshake failed',
};

export function unreachableFailure(server: string, code: string | undefined, message: string): CliFailure {
  const reason = code && reasons[code] ? `${reasons[code]} (${code})` : message;
  return new CliFailure(exitCodes.unreachable, [`cannot reach smeltd at ${server}: ${reason}`]);
}
