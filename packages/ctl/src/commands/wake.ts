import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.ts';
import { usageFailure } from '../failure.ts';

export default class Wake extends BaseCommand {
  static override summary = 'Wake machines with a Wake-on-LAN magic packet';
  static override description =
    "Sent to the broadcast address of each machine's subnet (from its deployment's address or its last lease), " +
    'ports 9 and 7, unless --broadcast says where.';
  static override examples = [
    '<%= config.bin %> wake 52:54:00:12:34:56',
    '<%= config.bin %> wake 52:54:00:12:34:56 52:54:00:12:34:57 --broadcast 10.1.0.255',
    '<%= config.bin %> wake 52:54:00:12:34:56 --password 01:02:03:04:05:06',
  ];
  static override strict = false;
  static override args = {
    mac: Args.string({ description: 'MAC of a machine to wake (several may follow)', required: true }),
  };
  static override flags = {
    broadcast: Flags.string({ description: 'send to this broadcast address instead' }),
    password: Flags.string({ description: 'SecureOn password, 4 or 6 bytes in hex' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Wake);
    const macs = argv.filter((value): value is string => typeof value === 'string');
    if (macs.length === 0) throw usageFailure('name at least one MAC');
    const client = await this.client(flags);
    const body = {
      ...(flags.broadcast === undefined ? {} : { broadcast: flags.broadcast }),
      ...(flags.password === undefined ? {} : { password: flags.password }),
    };
    const results = [];
    for (const mac of macs) {
      const result = await client.call('wakeMachine', { params: { mac }, body });
      results.push(result);
      if (flags.output !== 'json' && flags.output !== 'yaml')
        this.log(`${result.mac}: magic packet sent to ${result.sent.join(', ')}`);
    }
    if (flags.output === 'json' || flags.output === 'yaml') await this.printDetails(results, () => [], flags.output);
  }
}
