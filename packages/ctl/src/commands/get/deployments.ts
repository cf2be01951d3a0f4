import { Args, Flags } from '@oclif/core';
import { deploymentStates, deploymentTypes } from '@smelt/shared/deployment';
import { BaseCommand } from '../../base-command.ts';
import { usageFailure } from '../../failure.ts';
import { deploymentColumns } from '../../render/deployment.ts';

export default class GetDeployments extends BaseCommand {
  static override summary = 'List deployments, or show one (by name or MAC)';
  static override hiddenAliases = ['get:deployment'];
  static override examples = [
    '<%= config.bin %> get deployments --state failed',
    '<%= config.bin %> get deployment web1 -o yaml',
  ];
  static override args = { ref: Args.string({ description: 'show only this deployment (its name or MAC)' }) };
  static override flags = {
    boot: Flags.string({ description: 'only deployments of this boot' }),
    state: Flags.option({ options: deploymentStates, description: 'only deployments in this state' })(),
    type: Flags.option({ options: deploymentTypes, description: 'only deployments of this type' })(),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(GetDeployments);
    const filters = { boot: flags.boot, state: flags.state, type: flags.type };
    if (args.ref !== undefined && Object.values(filters).some((value) => value !== undefined)) {
      throw usageFailure('give a NAME|MAC or filters (--boot, --state, --type), not both');
    }
    const client = await this.client(flags);
    const items =
      args.ref === undefined
        ? await client.list('listDeployments', filters)
        : [await client.call('getDeployment', { params: { ref: args.ref } })];
    const now = new Date();
    await this.printList(
      { items, columns: (wide) => deploymentColumns(now, wide), noun: 'deployments', single: args.ref !== undefined },
      flags.output,
    );
  }
}
