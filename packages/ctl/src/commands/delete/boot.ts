import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.ts';

export default class DeleteBoot extends BaseCommand {
  static override summary = 'Delete a boot that no deployment uses';
  static override args = { name: Args.string({ description: 'the boot', required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(DeleteBoot);
    const client = await this.client(flags);
    await client.call('deleteBoot', { params: { name: args.name } });
    this.log(`boot "${args.name}" deleted`);
  }
}
