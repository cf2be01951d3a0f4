import type { GlobalDefaults } from '@smelt/shared/defaults';
import { BaseCommand } from '../../base-command.ts';
import type { Section } from '../../render/fields.ts';

export default class GetDefaults extends BaseCommand {
  static override summary = 'Show the global defaults every deployment inherits for what it leaves unset';
  static override examples = ['<%= config.bin %> get defaults', '<%= config.bin %> get defaults -o yaml'];

  async run(): Promise<void> {
    const { flags } = await this.parse(GetDefaults);
    const client = await this.client(flags);
    const defaults = await client.call('getDefaults', {});
    await this.printDetails(defaults, () => defaultsSections(defaults), flags.output);
  }
}

export function defaultsSections(defaults: GlobalDefaults): Section[] {
  return [
    {
      fields: [
        { label: 'Gateway', value: defaults.gateway },
        { label: 'Netmask', value: defaults.netmask },
        { label: 'DNS', value: defaults.dns },
        { label: 'NTP', value: defaults.ntp },
        { label: 'Domain', value: defaults.domain },
        { label: 'Packages', value: defaults.packages },
        {
          label: 'SSH keys',
          value: defaults.sshKeys?.map((key) => key.split(' ').slice(0, 1).concat(key.split(' ').slice(2)).join(' ')),
        },
        { label: 'User', value: defaults.user },
        { label: 'Password hash', value: defaults.passwordHash === undefined ? undefined : 'set' },
        { label: 'Disk', value: defaults.disk },
        { label: 'Mirror', value: defaults.mirror },
        { label: 'Proxy', value: defaults.proxy },
        { label: 'Variables', value: Object.entries(defaults.vars ?? {}).map(([k, v]) => `${k}=${v}`) },
      ],
    },
  ];
}
