import Table from 'cli-table3';
import type { ChalkInstance } from 'chalk';
import type { Terminal } from './terminal.ts';

/** kubectl's spelling of "no value": an empty cell would shift every later column for `awk '{print $3}'`. */
export const NONE = '<none>';

export interface Column<T> {
  header: string;
  value: (item: T) => string | undefined;
  /** Colour for a cell; applied after widths are measured, and a no-op when colour is off. */
  style?: (value: string, chalk: ChalkInstance) => string;
}

const GAP = '   ';

/**
 * A list as a table: boxed by cli-table3 on a terminal, plain whitespace-aligned columns with a header row
 * elsewhere. cli-table3 colours heads and borders itself (into pipes too, ignoring NO_COLOR), so its style lists are
 * always emptied and all colour goes through the terminal's chalk.
 */
export function renderTable<T>(columns: readonly Column<T>[], items: readonly T[], terminal: Terminal): string {
  const { chalk } = terminal;
  const cells = items.map((item) =>
    columns.map((column) => {
      const value = column.value(item);
      return value === undefined || value === '' ? NONE : value;
    }),
  );
  const styled = (row: string[]): string[] => row.map((cell, index) => columns[index]?.style?.(cell, chalk) ?? cell);

  if (terminal.tty) {
    const table = new Table({
      head: columns.map((column) => chalk.bold(column.header)),
      // compact: no rule between rows, which for a list is only noise.
      style: { head: [], border: [], compact: true },
    });
    table.push(...cells.map(styled));
    return table.toString();
  }

  const widths = columns.map((column, index) =>
    Math.max(column.header.length, ...cells.map((row) => row[index]?.length ?? 0)),
  );
  const line = (row: string[], shown: string[]): string =>
    row
      .map((cell, index) => (shown[index] ?? cell) + ' '.repeat((widths[index] ?? 0) - cell.length))
      .join(GAP)
      .trimEnd();
  const head = columns.map((column) => column.header);
  return [
    line(
      head,
      head.map((header) => chalk.bold(header)),
    ),
    ...cells.map((row) => line(row, styled(row))),
  ].join('\n');
}
