import { NONE } from './table.ts';
import type { Terminal } from './terminal.ts';

/** One labelled value in a describe block; several values go on lines of their own, aligned. */
export interface Field {
  label: string;
  value: string | readonly string[] | undefined;
  /** Shown dimmed after the value, e.g. "(default)" for an inherited setting. */
  note?: string | undefined;
}

export interface Section {
  /** Untitled sections are top-level; titled ones are indented under their title. */
  title?: string;
  fields: readonly Field[];
}

/** kubectl-describe style key/value blocks. */
export function renderSections(sections: readonly Section[], terminal: Terminal): string {
  const { chalk } = terminal;
  const lines: string[] = [];
  for (const section of sections) {
    const indent = section.title === undefined ? '' : '  ';
    if (section.title !== undefined) lines.push(chalk.bold(`${section.title}:`));
    if (section.fields.length === 0) lines.push(`${indent}${NONE}`);
    const width = Math.max(0, ...section.fields.map((field) => field.label.length + 1));
    for (const field of section.fields) {
      const values = typeof field.value === 'string' ? [field.value] : (field.value ?? []);
      const shown = values.length === 0 ? [NONE] : values;
      const note = field.note ? `  ${chalk.dim(field.note)}` : '';
      shown.forEach((value, index) => {
        const label = index === 0 ? `${field.label}:` : '';
        lines.push(`${indent}${label.padEnd(width)}  ${value}${index === shown.length - 1 ? note : ''}`);
      });
    }
  }
  return lines.join('\n');
}
