import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.ts';
import { describeMachine } from '../../render/machine.ts';

export default class DescribeMachine extends BaseCommand {
  static override summary = 'Show everything known about a machine';
  static override args = { mac: Args.string({ description: 'its MAC, in any common spelling', required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(DescribeMachine);
    const client = await this.client(flags);
    const machine = await client.call('getMachine', { params: { mac: args.mac } });
    // Its history: the most recent events of this machine, oldest first (the journal keeps a bounded window).
    const events = await client.call('listEvents', { query: { mac: machine.mac, limit: 10_000 } });
    const history = events.items.slice(-20);
    await this.printDetails(
      { ...machine, events: history },
      () => describeMachine(machine, new Date(), history),
      flags.output,
    );
  }
}
