/**
 * What every `pnpm bench NAME` shares on its command line: options parsed strictly (a bad flag is a UsageError: the
 * message and the usage, exit 2), value parsers for lists and counts, and the run wrapper that cleans up (namespaces,
 * servers) however the bench ends.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { cleanupAll, cleanupOnSignals } from './cleanup.ts';

export class UsageError extends Error {}

/** A progress line, on stderr (stdout carries the report). */
export function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** The bench's options; an unknown flag, a missing value or a positional argument is a UsageError. */
export function parseOptions<T extends ParseArgsOptionsConfig>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** A comma-separated list of allowed names. */
export function list<T extends string>(text: string | undefined, allowed: readonly T[], fallback: T[]): T[] {
  if (text === undefined) return fallback;
  const items = text.split(',').map((item) => item.trim());
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item))
      throw new UsageError(`unknown value "${item}" (use ${allowed.join(', ')})`);
  }
  return items as T[];
}

/** A comma-separated list of positive (or, with allowZero, non-negative) integers. */
export function numbers(text: string | undefined, fallback: number[], allowZero = false): number[] {
  if (text === undefined) return fallback;
  const values = text.split(',').map(Number);
  if (values.some((v) => !Number.isInteger(v) || v < (allowZero ? 0 : 1)))
    throw new UsageError(`not a list of ${allowZero ? 'non-negative' : 'positive'} integers: ${text}`);
  return values;
}

/** One positive (or, with allowZero, non-negative) integer. */
export function one(text: string | undefined, fallback: number, allowZero = false): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1))
    throw new UsageError(`not a ${allowZero ? 'non-negative' : 'positive'} integer: ${text}`);
  return value;
}

/** Runs a bench: its exit code; a UsageError says what was wrong and the usage, exit 2; cleanup always. */
export async function runBench(
  name: string,
  usage: string,
  argv: string[],
  bench: (argv: string[]) => Promise<number>,
): Promise<number> {
  cleanupOnSignals();
  try {
    return await bench(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      say(`bench ${name}: ${error.message}\n${usage}`);
      return 2;
    }
    throw error;
  } finally {
    await cleanupAll();
  }
}
