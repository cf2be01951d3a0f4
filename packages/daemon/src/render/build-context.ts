import type { Boot } from '@smelt/shared/boot';
import { effectiveHostSettings, type GlobalDefaults } from '@smelt/shared/defaults';
import type { Deployment } from '@smelt/shared/deployment';
import type { MachineRecord } from '@smelt/shared/machine';
import { ipv4ToNumber, netmaskToPrefix, numberToIpv4 } from '@smelt/shared/net';
import type { MachineUrls } from '../boot/urls.ts';
import { findSubnet, type Subnet } from '../dhcp/subnets.ts';
import type { RenderContext } from './context.ts';

export interface ContextInput {
  baseUrl: string;
  deployment: Deployment;
  boot: Boot;
  machine: MachineRecord | undefined;
  defaults: GlobalDefaults;
  /** The DHCP subnets: they fill in a static address's netmask, gateway and DNS when nothing else does. */
  subnets: readonly Subnet[];
  token: string;
  urls: MachineUrls;
}

/** Resolves everything a renderer needs: deployment over defaults over the address's DHCP subnet. */
export function buildRenderContext(input: ContextInput): RenderContext {
  const { deployment, boot, urls, token } = input;
  const host = effectiveHostSettings(input.defaults, deployment);
  const address = deployment.address;
  const subnet = address === undefined ? undefined : findSubnet(input.subnets, ipv4ToNumber(address) ?? 0);
  const dns = host.dns ?? subnet?.dns ?? [];
  let network: RenderContext['deployment']['network'] = { mode: 'dhcp', dns };
  if (address !== undefined) {
    const netmask = host.netmask ?? (subnet ? numberToIpv4(subnet.mask) : '255.255.255.0');
    network = {
      mode: 'static',
      address,
      netmask,
      prefix: netmaskToPrefix(netmask) ?? 24,
      gateway: host.gateway ?? subnet?.gateway,
      dns,
    };
  }
  const arch = input.machine?.arch;
  return {
    baseUrl: input.baseUrl,
    machine: { mac: deployment.mac, arch, firmware: arch?.includes('efi') ? 'uefi' : 'bios' },
    deployment: {
      name: deployment.name,
      type: deployment.type ?? boot.flavour ?? 'preseed',
      hostname: deployment.hostname ?? deployment.name,
      domain: host.domain ?? subnet?.domain,
      network,
      ntp: host.ntp ?? subnet?.ntp ?? [],
      packages: host.packages ?? [],
      sshKeys: host.sshKeys ?? [],
      user: host.user ?? 'smelt',
      passwordHash: host.passwordHash,
      disk: host.disk,
      mirror: host.mirror,
      proxy: host.proxy,
      vars: host.vars ?? {},
    },
    boot: {
      name: boot.name,
      kernelUrl: urls.bootFile(boot, boot.kernel ?? '', 'kernel'),
      initrdUrls: boot.initrd.map((file, index) => urls.bootFile(boot, file, index)),
      cmdline: boot.cmdline ?? '',
      isoUrl: boot.isoPath === undefined ? undefined : urls.iso(boot),
    },
    urls: {
      answerFile: urls.answers(deployment.mac, token),
      phoneHome: urls.hook(deployment.mac, token, 'installed'),
      failed: urls.hook(deployment.mac, token, 'failed'),
    },
  };
}
