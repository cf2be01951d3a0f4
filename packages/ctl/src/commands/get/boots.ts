import { Args, Flags } from '@oclif/core';
import { bootKinds } from '@smelt/shared/boot';
import { BaseCommand } from '../../base-command.ts';
import { usageFailure } from '../../failure.ts';
import { bootColumns } from '../../render/boot.ts';

export default class GetBoots extends BaseCommand {
  static override summary = 'List boots, or show one';
  static override hiddenAliases = ['get:boot'];
  static override examples = ['<%= config.bin %> get boots', '<%= config.bin %> get boots --kind installer -o wide'];
  static override args = { name: Args.string({ description: 'show only this boot' }) };
  static override flags = {
    kind: Flags.option({ options: bootKinds, description: 'only boots of this kind' })(),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(GetBoots);
    if (args.name !== undefined && flags.kind !== undefined) throw usageFailure('give a NAME or --kind, not both');
    const client = await this.client(flags);
    const items =
      args.name === undefined
        ? await client.list('listBoots', { kind: flags.kind })
        : [await client.call('getBoot', { params: { name: args.name } })];
    const now = new Date();
    await this.printList(
      { items, columns: (wide) => bootColumns(now, wide), noun: 'boots', single: args.name !== undefined },
      flags.output,
    );
  }
}
