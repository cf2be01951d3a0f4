import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.ts';

export default class Release extends BaseCommand {
  static override summary = 'Release a machine: its deployment ends and it becomes free';
  static override description =
    'With --wipe the machine is wiped first (it boots lifecycle.wipeBoot) and becomes free when the wipe reports back.';
  static override examples = [
    '<%= config.bin %> release 00:11:22:33:44:55',
    '<%= config.bin %> release 00:11:22:33:44:55 --wipe',
  ];
  static override args = { mac: Args.string({ description: 'its MAC, in any common spelling', required: true }) };
  static override flags = { wipe: Flags.boolean({ description: 'wipe the disks before the machine is free' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Release);
    const client = await this.client(flags);
    const machine = await client.call('releaseMachine', { params: { mac: args.mac }, body: { wipe: flags.wipe } });
    await this.printChange(
      machine,
      machine.state === 'free' ? `${machine.mac} released; it is free` : `${machine.mac} is ${machine.state}`,
      flags.output,
    );
  }
}
