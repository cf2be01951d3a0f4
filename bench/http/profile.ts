/**
 * Summarises a V8 CPU profile (`node --cpu-prof` writes one when the process exits): where smeltd spent its time
 * under load, by function (self and inclusive time) and by module. `pnpm bench http --profile DIR` profiles smeltd
 * during a run and prints this; on its own: node bench/http/profile.ts FILE.cpuprofile [TOP].
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../lib/paths.ts';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Wall time the profile covers, and time in samples that were not idle, milliseconds. */
  totalMs: number;
  busyMs: number;
  selfByFunction: { name: string; ms: number }[];
  inclusiveByFunction: { name: string; ms: number }[];
  selfByModule: { name: string; ms: number }[];
}

function shortUrl(url: string): string {
  if (url === '') return '';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  return path.startsWith(repoRoot) ? path.slice(repoRoot.length) : path;
}

function functionKey(frame: CallFrame): string {
  const name = frame.functionName || '(anonymous)';
  const url = shortUrl(frame.url);
  return url === '' ? name : `${name} ${url}:${frame.lineNumber + 1}`;
}

/** Modules: smeltd's files, Node's internal modules, and V8's pseudo-frames; native code without a URL is "native". */
function moduleKey(frame: CallFrame): string {
  if (frame.url === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native/builtin)';
  return shortUrl(frame.url);
}

export function summarise(profile: CpuProfile, top = 20): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const modules = new Map<string, number>();
  let busyUs = 0;
  const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time since the previous sample: the interval ending at sample i, charged to it.
    const us = profile.timeDeltas[i] ?? 0;
    const node = byId.get(profile.samples[i] ?? -1);
    if (!node) continue;
    const frame = node.callFrame;
    // Idle (the event loop waiting for I/O) is reported as the difference between wall and busy time only.
    if (frame.functionName === '(idle)') continue;
    busyUs += us;
    add(self, functionKey(frame), us);
    add(modules, moduleKey(frame), us);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const at = byId.get(id);
      if (!at) break;
      const key = functionKey(at.callFrame);
      if (key === '(root)' || seen.has(key)) continue;
      seen.add(key);
      add(inclusive, key, us);
    }
  }
  const sorted = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000 }));
  return {
    totalMs: (profile.endTime - profile.startTime) / 1000,
    busyMs: busyUs / 1000,
    selfByFunction: sorted(self),
    inclusiveByFunction: sorted(inclusive),
    selfByModule: sorted(modules),
  };
}

export function summariseFile(path: string, top = 20): ProfileSummary {
  return summarise(JSON.parse(readFileSync(path, 'utf8')) as CpuProfile, top);
}

/** The summary as markdown lists (each entry: ms and share of the busy time). */
export function renderSummary(summary: ProfileSummary, top = 12): string {
  const share = (ms: number) => `${((100 * ms) / Math.max(summary.busyMs, 1e-9)).toFixed(1)}%`;
  const list = (entries: { name: string; ms: number }[]) =>
    entries.slice(0, top).map((e) => `  - ${e.ms.toFixed(0)} ms (${share(e.ms)}) \`${e.name}\``);
  return [
    `- Profile: ${(summary.totalMs / 1000).toFixed(1)} s of wall time, ${(summary.busyMs / 1000).toFixed(1)} s on the main thread (not idle); shares below are of the busy time.`,
    '- Self time by module:',
    ...list(summary.selfByModule),
    '- Self time by function:',
    ...list(summary.selfByFunction),
    '- Inclusive time by function (each sample counted once per function on its stack):',
    ...list(summary.inclusiveByFunction),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, topText] = process.argv.slice(2);
  if (file === undefined) {
    process.stderr.write('usage: node bench/http/profile.ts FILE.cpuprofile [TOP]\n');
    process.exitCode = 2;
  } else {
    const top = Number(topText ?? 20);
    process.stdout.write(`${renderSummary(summariseFile(file, top), top)}\n`);
  }
}
