import type { SmeltEvent } from '@smelt/shared/event';
import { formatAge } from './age.ts';
import type { Column } from './table.ts';

export function eventColumns(now: Date, wide: boolean): Column<SmeltEvent>[] {
  return [
    { header: 'AGE', value: (event) => formatAge(event.time, now) },
    { header: 'TYPE', value: (event) => event.type },
    { header: 'MAC', value: (event) => event.mac },
    { header: 'MESSAGE', value: (event) => event.message },
    ...(wide
      ? [
          { header: 'SEQ', value: (event: SmeltEvent) => String(event.seq) },
          { header: 'TIME', value: (event: SmeltEvent) => event.time },
        ]
      : []),
  ];
}

/** One line per event for --watch: the time, the type, the MAC and the message, tab-separated for scripts. */
export function eventLine(event: SmeltEvent): string {
  return [event.time, event.type, event.mac ?? '-', event.message].join('\t');
}
