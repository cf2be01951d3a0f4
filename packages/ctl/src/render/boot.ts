import type { Boot, BootDetails } from '@smelt/shared/boot';
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

export function describeBoot(boot: Boot, now: Date, details?: BootDetails): Section[] {
  const iso = details?.iso;
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
    ...(iso
      ? [
          {
            title: 'ISO',
            fields: [
              { label: 'Volume', value: iso.volumeId },
              { label: 'Size', value: `${(iso.size / 1024 / 1024).toFixed(1)} MiB` },
              { label: 'Names from', value: iso.names },
              { label: 'Files', value: `${String(iso.files)} in ${String(iso.directories)} directories` },
              {
                label: 'Boot catalog',
                value:
                  iso.catalog.length === 0
                    ? 'none (not bootable as a CD)'
                    : iso.catalog.map(
                        (entry) =>
                          `${entry.platform}${entry.bootable ? '' : ' (not bootable)'}, ${entry.emulation} emulation` +
                          (entry.path === undefined ? '' : `: ${entry.path}`),
                      ),
              },
              ...(iso.problems.length > 0 ? [{ label: 'Catalog problems', value: iso.problems }] : []),
            ],
          },
        ]
      : []),
    ...(details
      ? [
          {
            title: 'Machines fetch',
            fields: [
              { label: 'Kernel', value: details.urls.kernel },
              { label: 'Initrd', value: details.urls.initrd },
              ...(details.urls.iso === undefined ? [] : [{ label: 'Whole ISO', value: details.urls.iso }]),
            ],
          },
        ]
      : []),
  ];
}
