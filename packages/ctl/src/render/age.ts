/**
 * How long ago `timestamp` was, in kubectl's compact style (45s, 12m, 5h, 3d, 2y): small enough for a column and
 * precise enough to tell "just now" from "last week".
 */
export function formatAge(timestamp: string | undefined, now: Date): string | undefined {
  if (timestamp === undefined) return undefined;
  const then = Date.parse(timestamp);
  if (Number.isNaN(then)) return undefined;
  const seconds = Math.max(0, Math.floor((now.getTime() - then) / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (days < 730) return `${days}d`;
  return `${Math.floor(days / 365)}y`;
}

/** For describe: the exact time and, beside it, how long ago. */
export function formatTime(timestamp: string | undefined, now: Date): string | undefined {
  const age = formatAge(timestamp, now);
  return timestamp === undefined ? undefined : age === undefined ? timestamp : `${timestamp} (${age} ago)`;
}
