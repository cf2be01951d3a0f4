/**
 * Adding a run's report to BENCHMARKS.md, the same way for every bench: at the end of its section (so a section
 * someone adds later stays after it), formatted by the repo's prettier on its own (nobody else's section is touched).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths.ts';
import { run } from './process.ts';

export const benchmarksPath = join(repoRoot, 'BENCHMARKS.md');

/** Whether `line` is the heading `heading` ("## DHCP"), alone or followed by more words ("## TFTP (`...`)"). */
function isHeading(line: string, heading: string): boolean {
  return line.trimEnd() === heading || line.startsWith(`${heading} `);
}

/** A markdown heading's level (2 for "## DHCP"), 0 for any other line. */
function level(line: string): number {
  const hashes = /^(#{1,6}) /.exec(line)?.[1];
  return hashes === undefined ? 0 : hashes.length;
}

/**
 * `text` with `report` at the end of the section headed `heading` ("## DHCP", "### Five real VMs"); the section
 * (`intro`, which starts with that heading) is added at the end of the file when missing. The section ends at the
 * next heading of its level or above that is not one of its own ("## TFTP run of ..." belongs to "## TFTP").
 */
export function insertIntoSection(text: string, heading: string, report: string, intro = heading): string {
  let lines = text.trimEnd().split('\n');
  if (!lines.some((line) => isHeading(line, heading))) lines = [...lines, '', ...intro.trim().split('\n')];
  const start = lines.findIndex((line) => isHeading(line, heading));
  const depth = level(heading);
  let end = lines.findIndex((line, i) => {
    const l = level(line);
    return i > start && l > 0 && l <= depth && !isHeading(line, heading);
  });
  if (end === -1) end = lines.length;
  const before = lines.slice(0, end).join('\n').trimEnd();
  const after = lines.slice(end).join('\n').trimEnd();
  return `${before}\n\n${report.trim()}\n${after ? `\n${after}\n` : ''}`;
}

/** Formats `report` (markdown) with the repo's prettier when it is installed; the report as it is otherwise. */
export async function formatMarkdown(report: string): Promise<string> {
  const prettier = join(repoRoot, 'node_modules/.bin/prettier');
  if (!existsSync(prettier)) return report;
  const result = await run(prettier, ['--stdin-filepath', benchmarksPath], { input: report });
  return result.code === 0 && result.stdout.trim() !== '' ? result.stdout : report;
}

/** Formats the report and writes BENCHMARKS.md with `place` (insertIntoSection, or a bench's own); its path. */
export async function addToBenchmarks(report: string, place: (text: string, formatted: string) => string) {
  const formatted = await formatMarkdown(report);
  const text = existsSync(benchmarksPath) ? readFileSync(benchmarksPath, 'utf8') : '# Benchmarks\n';
  writeFileSync(benchmarksPath, place(text, formatted));
  return benchmarksPath;
}
