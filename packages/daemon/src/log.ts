import { pino, type Logger } from 'pino';
import type { logLevels } from './config/schema.ts';

/** One JSON logger per daemon, passed down; subsystems take `log.child({ subsystem })`. */
export function createLogger(
  level: (typeof logLevels)[number],
  destination: NodeJS.WritableStream = process.stdout,
): Logger {
  return pino({ level, base: { service: 'smeltd' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
