import type { Iso } from './reader.ts';

/**
 * The files in an ISO whose paths are closest to one that does not exist, best first: for "casper/vmlinuz.efi
 * is not in the ISO; did you mean casper/vmlinuz?" when a boot is created. Case is ignored, a matching file
 * name counts more than a matching directory (installers move kernels between directories across releases).
 */
export function closestPaths(iso: Iso, wanted: string, count = 3): string[] {
  const target = split(wanted.toLowerCase().replace(/^\/+/, ''));
  const scored: { path: string; score: number }[] = [];
  for (const entry of iso.list()) {
    if (entry.kind !== 'file') continue;
    const candidate = split(entry.path.toLowerCase());
    const score = 2 * distance(target.base, candidate.base) + distance(target.dir, candidate.dir);
    scored.push({ path: entry.path, score });
  }
  scored.sort((a, b) => a.score - b.score || a.path.length - b.path.length || (a.path < b.path ? -1 : 1));
  return scored.slice(0, count).map((s) => s.path);
}

function split(path: string): { dir: string; base: string } {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? { dir: '', base: path } : { dir: path.slice(0, slash), base: path.slice(slash + 1) };
}

/** Levenshtein distance; names are short, so the quadratic table is cheap. */
function distance(a: string, b: string): number {
  if (a === b) return 0;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
