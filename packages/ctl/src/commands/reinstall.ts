import { Args } from '@oclif/core';
import { BaseCommand } from '../base-command.ts';

export default class Reinstall extends BaseCommand {
  static override summary = 'Install a deployed (or failed) machine again at its next network boot';
  static override examples = ['<%= config.bin %> reinstall 00:11:22:33:44:55'];
  static override args = { mac: Args.string({ description: 'its MAC, in any common spelling', required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Reinstall);
    const client = await this.client(flags);
    const machine = await client.call('reinstallMachine', { params: { mac: args.mac }, body: {} });
    await this.printChange(
      machine,
      `${machine.mac} is ${machine.state}; it reinstalls at its next network boot`,
      flags.output,
    );
  }
}
