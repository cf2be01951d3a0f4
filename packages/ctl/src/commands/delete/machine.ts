import { Args } from '@oclif/core';
import { tryParseMac } from '@smelt/shared/mac';
import { BaseCommand } from '../../base-command.ts';

export default class DeleteMachine extends BaseCommand {
  static override summary = 'Forget a machine that has no deployment';
  static override args = { mac: Args.string({ description: 'its MAC, in any common spelling', required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(DeleteMachine);
    const client = await this.client(flags);
    await client.call('deleteMachine', { params: { mac: args.mac } });
    this.log(`machine ${tryParseMac(args.mac) ?? args.mac} deleted`);
  }
}
