import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.ts';

export default class DeleteDeployment extends BaseCommand {
  static override summary = 'Delete a deployment; its machine becomes free';
  static override args = { ref: Args.string({ description: 'its name or its MAC', required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(DeleteDeployment);
    const client = await this.client(flags);
    await client.call('deleteDeployment', { params: { ref: args.ref } });
    this.log(`deployment "${args.ref}" deleted`);
  }
}
