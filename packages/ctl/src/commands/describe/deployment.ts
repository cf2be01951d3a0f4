import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.ts';
import { describeDeployment } from '../../render/deployment.ts';

export default class DescribeDeployment extends BaseCommand {
  static override summary = 'Show a deployment with the settings it really gets (its own, else the defaults)';
  static override args = { ref: Args.string({ description: 'its name or its MAC', required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(DescribeDeployment);
    const client = await this.client(flags);
    const [deployment, defaults] = await Promise.all([
      client.call('getDeployment', { params: { ref: args.ref } }),
      client.call('getDefaults', {}),
    ]);
    await this.printDetails(deployment, () => describeDeployment(deployment, defaults, new Date()), flags.output);
  }
}
