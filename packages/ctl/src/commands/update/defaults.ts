import { Flags } from '@oclif/core';
import { routes } from '@smelt/shared/api';
import { BaseCommand } from '../../base-command.ts';
import { validateFlags } from '../../flags/validate.ts';
import { usageFailure } from '../../failure.ts';
import {
  deploymentFlagFor,
  deploymentSettingFlags,
  deploymentSettingsFromFlags,
  fieldsToUnset,
} from '../../flags/deployment.ts';
import { defaultsSections } from '../get/defaults.ts';

/** The host settings only: what a deployment is (boot, type) and who it is (address, hostname) have no default. */
const {
  boot: _boot,
  deploymentType: _type,
  address: _address,
  hostname: _hostname,
  nfsRoot: _nfsRoot,
  rw: _rw,
  rootfs: _rootfs,
  liveStyle: _liveStyle,
  iscsiTarget: _iscsiTarget,
  iscsiServer: _iscsiServer,
  iscsiLun: _iscsiLun,
  image: _image,
  imageSha256: _imageSha256,
  grow: _grow,
  ...hostFlags
} = deploymentSettingFlags;
const notDefaults = new Set(['address', 'hostname', 'type', 'live', 'image']);

export default class UpdateDefaults extends BaseCommand {
  static override summary = 'Change the global defaults (only the settings given; --unset clears one)';
  static override examples = [
    '<%= config.bin %> update defaults --dns 10.0.0.53,10.0.0.54 --ntp pool.ntp.org --packages openssh-server',
    '<%= config.bin %> update defaults --sshKey ~/.ssh/id_ed25519.pub --unset mirror',
  ];
  static override flags = {
    ...hostFlags,
    unset: Flags.string({
      description: 'clear this default (repeatable or comma-separated)',
      multiple: true,
      multipleNonGreedy: true,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(UpdateDefaults);
    const settings = await deploymentSettingsFromFlags(flags);
    const unset = fieldsToUnset(flags.unset);
    const wrong = unset.filter((field) => notDefaults.has(field));
    if (wrong.length > 0) throw usageFailure(`--unset ${wrong.join(', ')}: not a default (set it on the deployment)`);
    const both = unset.filter((field) => settings[field] !== undefined);
    if (both.length > 0) throw usageFailure(`--unset ${both.join(', ')}: cannot set and unset the same field`);
    const patch = validateFlags(
      routes.updateDefaults.body,
      { ...settings, ...Object.fromEntries(unset.map((field) => [field, null])) },
      deploymentFlagFor,
    );
    if (Object.keys(patch).length === 0) throw usageFailure('nothing to change: give a setting flag or --unset');
    const client = await this.client(flags);
    const defaults = await client.call('updateDefaults', { body: patch });
    await this.printDetails(defaults, () => defaultsSections(defaults), flags.output);
  }
}
