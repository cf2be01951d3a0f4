import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.ts';
import { describeBoot } from '../../render/boot.ts';

export default class DescribeBoot extends BaseCommand {
  static override summary = 'Show everything about a boot';
  static override args = { name: Args.string({ description: 'the boot', required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(DescribeBoot);
    const client = await this.client(flags);
    const boot = await client.call('getBoot', { params: { name: args.name } });
    const details = await client.call('getBootDetails', { params: { name: args.name } });
    await this.printDetails({ ...boot, details }, () => describeBoot(boot, new Date(), details), flags.output);
  }
}
