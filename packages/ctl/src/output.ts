import { renderSections, type Section } from './render/fields.ts';
import { renderTable, type Column } from './render/table.ts';
import type { Terminal } from './render/terminal.ts';

export const outputFormats = ['table', 'wide', 'json', 'yaml'] as const;
export type OutputFormat = (typeof outputFormats)[number];

/** json and yaml print exactly what the API returned, for scripts; the others are for people. */
export async function serialize(data: unknown, format: 'json' | 'yaml'): Promise<string> {
  if (format === 'json') return JSON.stringify(data, null, 2);
  // Loaded on demand: yaml costs ~20 ms of start-up that every other output format would pay for nothing.
  const { stringify } = await import('yaml');
  return stringify(data).trimEnd();
}

export interface ListView<T> {
  items: readonly T[];
  columns: (wide: boolean) => Column<T>[];
  /** Plural noun for "No boots found." */
  noun: string;
  /** `get boot NAME`: json/yaml print the object itself rather than a one-item array. */
  single?: boolean;
}

/**
 * A list (or a one-item `get NAME`) in the chosen format. An empty list prints nothing on stdout and says so on
 * stderr, as kubectl does, so that `| wc -l` counts resources.
 */
export async function formatList<T>(
  view: ListView<T>,
  format: OutputFormat | undefined,
  terminal: Terminal,
): Promise<{ stdout?: string; stderr?: string }> {
  if (format === 'json' || format === 'yaml') {
    return { stdout: await serialize(view.single ? view.items[0] : view.items, format) };
  }
  if (view.items.length === 0) return { stderr: `No ${view.noun} found.` };
  return { stdout: renderTable(view.columns(format === 'wide'), view.items, terminal) };
}

/** One resource for `describe`: key/value blocks for people, the API object for json/yaml. */
export async function formatDetails(
  data: unknown,
  sections: () => Section[],
  format: OutputFormat | undefined,
  terminal: Terminal,
): Promise<string> {
  if (format === 'json' || format === 'yaml') return await serialize(data, format);
  return renderSections(sections(), terminal);
}
