import { Args, Flags } from '@oclif/core';
import { deploymentPatchSchema } from '@smelt/shared/deployment';
import { BaseCommand } from '../../base-command.ts';
import { usageFailure } from '../../failure.ts';
import {
  deploymentFlagFor,
  deploymentSettingFlags,
  deploymentSettingsFromFlags,
  fieldsToUnset,
} from '../../flags/deployment.ts';
import { macFlag } from '../../flags/mac.ts';
import { validateFlags } from '../../flags/validate.ts';

export default class UpdateDeployment extends BaseCommand {
  static override summary = 'Change a deployment (by name, or by --MAC)';
  static override description =
    'Only the settings given change. --unset FIELD clears a setting, so that it is inherited from the defaults again.';
  static override examples = [
    '<%= config.bin %> update deployment web1 --address 10.0.0.51 --unset gateway',
    '<%= config.bin %> update deployment --MAC aa:bb:cc:dd:ee:ff --boot debian13 --var tz=UTC',
  ];
  static override args = { ref: Args.string({ description: 'the deployment, by name or MAC' }) };
  static override flags = {
    MAC: macFlag('the deployment of the machine with this MAC (instead of a name)', false),
    rename: Flags.string({ description: 'give the deployment a new name' }),
    ...deploymentSettingFlags,
    unset: Flags.string({
      description: 'clear this setting so the default applies again (repeatable or comma-separated)',
      multiple: true,
      multipleNonGreedy: true,
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(UpdateDeployment);
    if ((args.ref === undefined) === (flags.MAC === undefined)) {
      throw usageFailure('name the deployment: give its NAME or --MAC, exactly one of them');
    }
    const ref = args.ref ?? flags.MAC ?? '';
    const settings = await deploymentSettingsFromFlags(flags);
    const unset = fieldsToUnset(flags.unset);
    const both = unset.filter((field) => settings[field] !== undefined);
    if (both.length > 0) throw usageFailure(`--unset ${both.join(', ')}: cannot set and unset the same field`);

    const client = await this.client(flags);
    const patch = validateFlags(
      deploymentPatchSchema,
      {
        ...(flags.rename === undefined ? {} : { name: flags.rename }),
        ...settings,
        ...Object.fromEntries(unset.map((field) => [field, null])),
      },
      { ...deploymentFlagFor, name: 'rename' },
    );
    if (Object.keys(patch).length === 0) throw usageFailure('nothing to change: give a setting flag or --unset');
    const deployment = await client.call('updateDeployment', { params: { ref }, body: patch });
    await this.printChange(deployment, `deployment "${deployment.name}" updated`, flags.output);
  }
}
