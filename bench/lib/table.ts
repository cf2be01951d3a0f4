export type Align = 'left' | 'right';

/**
 * A GitHub-flavoured markdown table, padded the way prettier formats one (so that BENCHMARKS.md stays
 * `prettier --check` clean): every cell padded to its column's width, `---:` for right-aligned columns.
 */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly Align[],
) {
  const escape = (cell: string) => cell.replaceAll('|', '\\|');
  const all = [header, ...rows].map((row) => header.map((_, i) => escape(row[i] ?? '')));
  const widths = header.map((_, i) => Math.max(3, ...all.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells
      .map((cell, i) => {
        const width = widths[i] ?? 3;
        return align[i] === 'right' ? cell.padStart(width) : cell.padEnd(width);
      })
      .join(' | ')} |`;
  const rule = `| ${widths.map((width, i) => (align[i] === 'right' ? `${'-'.repeat(width - 1)}:` : '-'.repeat(width))).join(' | ')} |`;
  const [head, ...body] = all;
  return [line(head ?? []), rule, ...body.map(line)].join('\n');
}
