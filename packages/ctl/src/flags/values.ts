import { usageFailure } from '../failure.ts';

/**
 * A list flag given as `--dns a,b`, `--dns a --dns b` or both: every comma-separated part of every occurrence,
 * trimmed, blanks dropped. Undefined when the flag was not given, so that "leave alone" and "empty" stay apart.
 */
export function splitList(values: readonly string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  return values
    .flatMap((value) => value.split(','))
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/** `--var KEY=VALUE`, repeatable: the value may itself contain "=", the key may not be empty. */
export function parseKeyValues(
  values: readonly string[] | undefined,
  flag: string,
): Record<string, string> | undefined {
  if (values === undefined) return undefined;
  const result: Record<string, string> = {};
  for (const value of values) {
    const equals = value.indexOf('=');
    const key = equals === -1 ? '' : value.slice(0, equals).trim();
    if (key === '') throw usageFailure(`--${flag}: "${value}" is not KEY=VALUE`);
    result[key] = value.slice(equals + 1);
  }
  return result;
}

/** Drops the keys whose value is undefined: those flags were not given, and a JSON body should not mention them. */
export function definedOnly<T extends Record<string, unknown>>(object: T): Partial<T> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as Partial<T>;
}
