import { Chalk, type ChalkInstance, type ColorSupportLevel } from 'chalk';

/** Where output goes and how it may look there. */
export interface Terminal {
  /** Boxed cli-table3 tables on a terminal; whitespace-aligned columns for pipes and files. */
  tty: boolean;
  /** Level 0 (no escape codes at all) unless stdout is a terminal and NO_COLOR is unset. */
  chalk: ChalkInstance;
}

/**
 * chalk alone would colour a pipe under FORCE_COLOR and ignores NO_COLOR (https://no-color.org: set and not empty),
 * so the decision is made here, once, from the stream and the environment.
 */
export function detectTerminal(
  stream: { isTTY?: boolean | undefined },
  env: Readonly<Record<string, string | undefined>>,
  /** What chalk detected for stdout; on a terminal it still decides (TERM=dumb gets no colour). */
  supported: ColorSupportLevel = new Chalk().level,
): Terminal {
  const tty = stream.isTTY === true;
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  return { tty, chalk: new Chalk({ level: tty && !noColor ? supported : 0 }) };
}

/** For tests and callers that want text only. */
export function plainTerminal(tty = false): Terminal {
  return { tty, chalk: new Chalk({ level: 0 }) };
}
