import { Flags } from '@oclif/core';
import { machineSpecSchema } from '@smelt/shared/machine';
import { BaseCommand } from '../../base-command.ts';
import { macFlag } from '../../flags/mac.ts';
import { validateFlags } from '../../flags/validate.ts';
import { definedOnly, parseKeyValues } from '../../flags/values.ts';

export default class CreateMachine extends BaseCommand {
  static override summary = 'Register a machine before it is seen on the network';
  static override examples = ['<%= config.bin %> create machine --MAC aa:bb:cc:dd:ee:ff --label rack=r12'];
  static override flags = {
    MAC: macFlag('MAC of the machine', true),
    label: Flags.string({ description: 'label KEY=VALUE (repeatable)', multiple: true, multipleNonGreedy: true }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(CreateMachine);
    const spec = validateFlags(
      machineSpecSchema,
      definedOnly({ mac: flags.MAC, labels: parseKeyValues(flags.label, 'label') }),
      { mac: 'MAC', labels: 'label' },
    );
    const client = await this.client(flags);
    const machine = await client.call('createMachine', { body: spec });
    await this.printChange(machine, `machine ${machine.mac} created`, flags.output);
  }
}
