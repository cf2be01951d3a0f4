import { Flags } from '@oclif/core';
import { deploymentSpecSchema } from '@smelt/shared/deployment';
import type { Machine } from '@smelt/shared/machine';
import { BaseCommand } from '../base-command.ts';
import { CliFailure, exitCodes, usageFailure } from '../failure.ts';
import { deploymentFlagFor, deploymentSettingFlags, deploymentSettingsFromFlags } from '../flags/deployment.ts';
import { macFlag } from '../flags/mac.ts';
import { validateFlags } from '../flags/validate.ts';
import { definedOnly, parseKeyValues } from '../flags/values.ts';

export default class Deploy extends BaseCommand {
  static override summary = 'Deploy a machine in one step: it installs (or boots) at its next network boot';
  static override description =
    'A held machine (free, waiting in its iPXE script) starts within seconds, without a power cycle. ' +
    'With --any, the first free machine matching every --selector is claimed.';
  static override examples = [
    '<%= config.bin %> deploy --MAC 00:11:22:33:44:55 --boot rocky9 --address 192.168.0.100 --packages openssh,docker --deploymentType kickstart',
    '<%= config.bin %> deploy --any --selector arch=x86_64-efi --selector rack=r1 --boot ubuntu --deploymentType autoinstall',
  ];
  static override flags = {
    MAC: macFlag('MAC of the machine to deploy', false),
    any: Flags.boolean({ description: 'claim any free machine (matching --selector) instead of naming one' }),
    selector: Flags.string({
      description: 'KEY=VALUE a claimed machine must match: arch, vendor, or one of its labels (repeatable)',
      multiple: true,
      multipleNonGreedy: true,
    }),
    name: Flags.string({ description: 'name of the deployment [default: the hostname, else the MAC]' }),
    wake: Flags.boolean({ description: 'then wake the machine (Wake-on-LAN), for one that is powered off' }),
    ...deploymentSettingFlags,
    boot: Flags.string({ description: deploymentSettingFlags.boot.description, required: true }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Deploy);
    if ((flags.MAC === undefined) === !flags.any) throw usageFailure('give --MAC, or --any (with --selector)');
    if (flags.selector && !flags.any) throw usageFailure('--selector goes with --any');
    const settings = await deploymentSettingsFromFlags(flags);
    const client = await this.client(flags);
    const specFor = (mac: string) =>
      validateFlags(
        deploymentSpecSchema,
        { ...definedOnly({ mac, name: flags.name }), ...settings },
        deploymentFlagFor,
      );
    const woken = async (mac: string) => {
      if (!flags.wake) return '';
      const result = await client.call('wakeMachine', { params: { mac }, body: {} });
      return `; woken (magic packet to ${result.sent.join(', ')})`;
    };
    if (flags.MAC !== undefined) {
      const deployment = await client.call('createDeployment', { body: specFor(flags.MAC) });
      const wake = await woken(deployment.mac);
      await this.printChange(
        deployment,
        `${deployment.mac} deployed as "${deployment.name}" (boot ${deployment.boot})${wake}`,
        flags.output,
      );
      return;
    }
    const selector = parseKeyValues(flags.selector, 'selector') ?? {};
    const free = (await client.list('listMachines', { state: 'free' })).filter((m) => matches(m, selector));
    // Another client may claim the same machine first: its deployment then exists, ours conflicts, try the next.
    for (const machine of free) {
      try {
        const deployment = await client.call('createDeployment', { body: specFor(machine.mac) });
        const wake = await woken(deployment.mac);
        await this.printChange(
          deployment,
          `${deployment.mac} deployed as "${deployment.name}" (boot ${deployment.boot})${wake}`,
          flags.output,
        );
        return;
      } catch (error) {
        if (error instanceof CliFailure && error.exitCode === exitCodes.conflict) continue;
        throw error;
      }
    }
    const wanted = Object.entries(selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    throw new CliFailure(exitCodes.notFound, [`no free machine${wanted ? ` matches ${wanted}` : ''}`]);
  }
}

function matches(machine: Machine, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => {
    if (key === 'arch') return machine.arch === value;
    if (key === 'vendor') return machine.vendor === value;
    return machine.labels[key] === value;
  });
}
