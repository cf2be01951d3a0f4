import type { SmeltEvent } from '@smelt/shared/event';
import type { Machine } from '@smelt/shared/machine';
import { formatAge, formatTime } from './age.ts';
import type { Section } from './fields.ts';
import { styleState } from './state.ts';
import type { Column } from './table.ts';

function labelList(machine: Machine): string[] {
  return Object.entries(machine.labels).map(([key, value]) => `${key}=${value}`);
}

export function machineColumns(now: Date, wide: boolean): Column<Machine>[] {
  return [
    { header: 'MAC', value: (machine) => machine.mac },
    {
      header: 'STATE',
      value: (machine) =>
        machine.queue === undefined ? machine.state : `${machine.state} (queue ${String(machine.queue)})`,
      style: styleState,
    },
    { header: 'ARCH', value: (machine) => machine.arch },
    { header: 'VENDOR', value: (machine) => machine.vendor },
    { header: 'LAST SEEN', value: (machine) => formatAge(machine.lastSeen, now) },
    { header: 'DEPLOYMENT', value: (machine) => machine.deployment ?? undefined },
    ...(wide
      ? [
          { header: 'FIRST SEEN', value: (machine: Machine) => formatAge(machine.firstSeen, now) },
          { header: 'UUID', value: (machine: Machine) => machine.uuid },
          { header: 'LABELS', value: (machine: Machine) => labelList(machine).join(',') },
        ]
      : []),
  ];
}

export function describeMachine(machine: Machine, now: Date, events: readonly SmeltEvent[] = []): Section[] {
  return [
    {
      fields: [
        { label: 'MAC', value: machine.mac },
        { label: 'State', value: machine.state },
        { label: 'Deployment', value: machine.deployment ?? undefined },
        { label: 'Labels', value: labelList(machine) },
        { label: 'Registered', value: formatTime(machine.createdAt, now) },
      ],
    },
    {
      title: 'Seen on the wire',
      fields: [
        { label: 'First seen', value: formatTime(machine.firstSeen, now) },
        { label: 'Last seen', value: formatTime(machine.lastSeen, now) },
        { label: 'Architecture', value: machine.arch },
        { label: 'Vendor (OUI)', value: machine.vendor },
        { label: 'Vendor class', value: machine.vendorClass },
        { label: 'User class', value: machine.userClass },
        { label: 'UUID', value: machine.uuid },
        { label: 'Relay', value: machine.relay },
        { label: 'Last lease', value: machine.lastLease },
        {
          label: 'Image written',
          value:
            machine.progress === undefined
              ? undefined
              : `${(machine.progress.bytes / 1024 / 1024).toFixed(1)} MiB${
                  machine.progress.total === undefined
                    ? ''
                    : ` of ${(machine.progress.total / 1024 / 1024).toFixed(1)} MiB`
                } (${formatAge(machine.progress.at, now) ?? '?'} ago)`,
        },
      ],
    },
    {
      title: 'Events',
      fields:
        events.length === 0
          ? [{ label: 'None', value: undefined }]
          : events.map((event) => ({
              label: `${formatAge(event.time, now) ?? '?'} ago`,
              value: `${event.type}: ${event.message}`,
            })),
    },
  ];
}
