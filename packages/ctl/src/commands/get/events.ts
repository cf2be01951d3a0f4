import { Flags } from '@oclif/core';
import { eventTypes } from '@smelt/shared/event';
import { tryParseMac } from '@smelt/shared/mac';
import { BaseCommand } from '../../base-command.ts';
import { usageFailure } from '../../failure.ts';
import { macFlag } from '../../flags/mac.ts';
import { eventColumns, eventLine } from '../../render/event.ts';

export default class GetEvents extends BaseCommand {
  static override summary = 'List recent events, or follow them as they happen (--watch)';
  static override hiddenAliases = ['get:event'];
  static override examples = [
    '<%= config.bin %> get events --MAC 52:54:00:12:34:56',
    '<%= config.bin %> get events --watch --type machine.installed',
    '<%= config.bin %> get events --watch -o json',
  ];
  static override flags = {
    MAC: macFlag('only events of this machine', false),
    type: Flags.option({ options: eventTypes, description: 'only events of this type' })(),
    watch: Flags.boolean({ char: 'w', description: 'after the recent events, print each new one until interrupted' }),
    after: Flags.integer({ description: 'only events after this sequence number (SEQ in -o wide)', min: 0 }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(GetEvents);
    const mac = flags.MAC === undefined ? undefined : tryParseMac(flags.MAC);
    if (flags.MAC !== undefined && !mac) throw usageFailure(`--MAC: not a MAC address: ${flags.MAC}`);
    const client = await this.client(flags);
    const page = await client.call('listEvents', {
      query: { mac, type: flags.type, after: flags.after, limit: 10_000 },
    });
    if (!flags.watch) {
      const now = new Date();
      await this.printList(
        { items: page.items, columns: (wide) => eventColumns(now, wide), noun: 'events', single: false },
        flags.output,
      );
      return;
    }
    const print = (event: (typeof page.items)[number]) => {
      this.log(flags.output === 'json' ? JSON.stringify(event) : eventLine(event));
    };
    page.items.forEach(print);
    const { followEvents } = await import('../../event-stream.ts');
    // Resume after the last event printed, or after the newest at the time of the list: nothing shown twice,
    // nothing missed in between.
    const after = page.items.at(-1)?.seq ?? Math.max(page.latest, flags.after ?? 0);
    await followEvents(await this.connection(flags), { mac, type: flags.type, after }, print);
  }
}
