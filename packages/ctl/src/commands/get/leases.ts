import { Flags } from '@oclif/core';
import { leaseStates } from '@smelt/shared/lease';
import { BaseCommand } from '../../base-command.ts';
import { macFlag } from '../../flags/mac.ts';
import { leaseColumns } from '../../render/lease.ts';

export default class GetLeases extends BaseCommand {
  static override summary = 'List DHCP leases';
  static override hiddenAliases = ['get:lease'];
  static override examples = [
    '<%= config.bin %> get leases',
    '<%= config.bin %> get leases --state bound -o json',
    '<%= config.bin %> get leases --MAC 52:54:00:12:34:56',
  ];
  static override flags = {
    MAC: macFlag('only leases of this machine', false),
    state: Flags.option({ options: leaseStates, description: 'only leases in this state' })(),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(GetLeases);
    const client = await this.client(flags);
    const items = await client.list('listLeases', { mac: flags.MAC, state: flags.state });
    const now = new Date();
    await this.printList(
      { items, columns: (wide) => leaseColumns(now, wide), noun: 'leases', single: false },
      flags.output,
    );
  }
}
