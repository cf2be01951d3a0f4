import { Args, Flags } from '@oclif/core';
import { machineStates } from '@smelt/shared/machine';
import { BaseCommand } from '../../base-command.ts';
import { usageFailure } from '../../failure.ts';
import { machineColumns } from '../../render/machine.ts';

export default class GetMachines extends BaseCommand {
  static override summary = 'List machines, or show one';
  static override hiddenAliases = ['get:machine'];
  static override examples = [
    '<%= config.bin %> get machines --state free',
    '<%= config.bin %> get machine aa-bb-cc-dd-ee-ff',
  ];
  static override args = { mac: Args.string({ description: 'show only this machine' }) };
  static override flags = {
    state: Flags.option({ options: machineStates, description: 'only machines in this state' })(),
    arch: Flags.string({ description: 'only machines of this architecture' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(GetMachines);
    if (args.mac !== undefined && (flags.state !== undefined || flags.arch !== undefined)) {
      throw usageFailure('give a MAC or filters (--state, --arch), not both');
    }
    const client = await this.client(flags);
    const items =
      args.mac === undefined
        ? await client.list('listMachines', { state: flags.state, arch: flags.arch })
        : [await client.call('getMachine', { params: { mac: args.mac } })];
    const now = new Date();
    await this.printList(
      { items, columns: (wide) => machineColumns(now, wide), noun: 'machines', single: args.mac !== undefined },
      flags.output,
    );
  }
}
