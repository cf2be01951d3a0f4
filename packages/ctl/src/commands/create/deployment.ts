import { Flags } from '@oclif/core';
import { deploymentSpecSchema } from '@smelt/shared/deployment';
import { BaseCommand } from '../../base-command.ts';
import { deploymentFlagFor, deploymentSettingFlags, deploymentSettingsFromFlags } from '../../flags/deployment.ts';
import { macFlag } from '../../flags/mac.ts';
import { validateFlags } from '../../flags/validate.ts';
import { definedOnly } from '../../flags/values.ts';

export default class CreateDeployment extends BaseCommand {
  static override summary = 'Bind a machine to a boot, with its host settings';
  static override description = 'Settings left out are inherited from the global defaults.';
  static override examples = [
    '<%= config.bin %> create deployment --MAC aa:bb:cc:dd:ee:ff --boot debian12 --address 10.0.0.50 --hostname web1 --deploymentType preseed --packages nginx,curl',
  ];
  static override flags = {
    MAC: macFlag('MAC of the machine to deploy', true),
    name: Flags.string({ description: 'name of the deployment [default: the hostname, else the MAC]' }),
    ...deploymentSettingFlags,
    boot: Flags.string({ description: deploymentSettingFlags.boot.description, required: true }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(CreateDeployment);
    const spec = validateFlags(
      deploymentSpecSchema,
      { ...definedOnly({ mac: flags.MAC, name: flags.name }), ...(await deploymentSettingsFromFlags(flags)) },
      deploymentFlagFor,
    );
    const client = await this.client(flags);
    const deployment = await client.call('createDeployment', { body: spec });
    await this.printChange(
      deployment,
      `deployment "${deployment.name}" created (${deployment.mac} boots ${deployment.boot})`,
      flags.output,
    );
  }
}
