import type { Boot } from '@smelt/shared/boot';
import { formatAge, formatTime } from './age.ts';
import type { Section } from './fields.ts';
import type { Column } from './table.ts';

/** Where the kernel comes from: the ISO it is read out of, or the kernel path/URL itself. */
function source(boot: Boot): string | undefined {
  return boot.isoPath ?? boot.kernel;
}

export function bootColumns(now: Date, wide: boolean): Column<Boot>[] {
  return [
    { header: 'NAME', value: (boot) => boot.name },
    { header: 'KIND', value: (boot) => boot.kind },
    { header: 'SOURCE', value: source },
    { header: 'AGE', value: (boot) => formatAge(boot.createdAt, now) },
    ...(wide
      ? [
          { header: 'INITRD', value: (boot: Boot) => boot.initrd.join(',') },
          { header: 'CMDLINE', value: (boot: Boot) => boot.cmdline },
        ]
      : []),
  ];
}

export function describeBoot(boot: Boot, now: Date): Section[] {
  return [
    {
      fields: [
        { label: 'Name', value: boot.name },
        { label: 'Kind', value: boot.kind },
        { label: 'Flavour', value: boot.flavour },
        { label: 'Description', value: boot.description },
        { label: 'Created', value: formatTime(boot.createdAt, now) },
        { label: 'Updated', value: formatTime(boot.updatedAt, now) },
      ],
    },
    {
      title: 'Source',
      fields: [
        ...(boot.isoPath !== undefined
          ? [
              { label: 'ISO', value: boot.isoPath },
              { label: 'ISO prefix', value: boot.isoPrefix },
            ]
          : []),
        { label: boot.isoPath !== undefined ? 'Kernel (in ISO)' : 'Kernel', value: boot.kernel },
        { label: boot.isoPath !== undefined ? 'Initrd (in ISO)' : 'Initrd', value: boot.initrd },
        { label: 'Cmdline', value: boot.cmdline },
      ],
    },
  ];
}
