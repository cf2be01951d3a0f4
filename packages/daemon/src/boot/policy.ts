import type { Boot } from '@smelt/shared/boot';
import type { Deployment } from '@smelt/shared/deployment';
import type { Config } from '../config/schema.ts';
import type { ScriptSpec } from '../render/ipxe.ts';
import type { MachineUrls } from './urls.ts';

/** What the boot policy knows about one machine at one moment. */
export interface PolicyInput {
  mac: string;
  deployment: Deployment | undefined;
  boot: Boot | undefined;
  /** The deployment's phone-home token. */
  token: string | undefined;
  wipeBoot: Boot | undefined;
  lifecycle: Config['lifecycle'];
  urls: MachineUrls;
}

/**
 * decideBoot (DESIGN.md §4 boot/policy.ts): the one pure function from a machine's state to what it is told when
 * it network-boots. Idempotent: asking twice gives the same answer, so a machine may poll.
 */
export function decideBoot(input: PolicyInput): ScriptSpec {
  const { mac, deployment, urls } = input;
  const selfUrl = urls.script(mac);
  const hold = (reason: 'free' | 'failed' | 'wiping'): ScriptSpec => ({
    kind: 'hold',
    mac,
    selfUrl,
    reason,
    pollSeconds: input.lifecycle.pollSeconds,
  });
  if (!deployment) {
    switch (input.lifecycle.unknown) {
      case 'hold':
        return hold('free');
      case 'ignore':
        return { kind: 'exit', mac };
      case 'reboot':
        return { kind: 'reboot', mac };
      case 'poweroff':
        return { kind: 'poweroff', mac };
    }
  }
  switch (deployment.state) {
    case 'deployed':
      return { kind: 'local', mac, deployment: deployment.name };
    case 'failed':
      return hold('failed');
    case 'wiping':
      if (!input.wipeBoot || !input.token) return hold('wiping');
      return installer(input, input.wipeBoot, [
        'smelt.wipe=1',
        `smelt.phonehome=${urls.hook(mac, input.token, 'installed')}`,
      ]);
    case 'provisioning':
    case 'running':
      // A diskless ("running") machine boots its OS from the network every time.
      if (deployment.type === 'live' && deployment.live?.iscsi) {
        const uri = iscsiUri(deployment.live.iscsi);
        // A managed disk's target is filled in when the deployment is stored; without one there is nothing to boot.
        if (!uri) return hold('failed');
        return { kind: 'sanboot', mac, deployment: deployment.name, uri, initiator: initiatorIqn(mac) };
      }
      if (!input.boot || !input.token) return hold('failed');
      if (deployment.type === 'live') return installer(input, input.boot, liveArgs(input, deployment, input.token));
      if (deployment.type === 'image') {
        // The boot is the image writer: it fetches its job (render/image-job.ts) and runs it.
        const { hook, job } = input.urls;
        return installer(input, input.boot, [
          `smelt.job=${job(mac, input.token)}`,
          `smelt.phonehome=${hook(mac, input.token, 'installed')}`,
        ]);
      }
      return installer(input, input.boot, flavourArgs(input, input.boot, deployment, input.token));
  }
}

function installer(input: PolicyInput, boot: Boot, extra: string[]): ScriptSpec {
  const { urls, mac, deployment } = input;
  return {
    kind: 'installer',
    mac,
    deployment: deployment?.name ?? mac,
    what: `${boot.name}${deployment?.type ? ` (${deployment.type})` : ''}`,
    kernelUrl: urls.bootFile(boot, boot.kernel ?? '', 'kernel'),
    initrdUrls: boot.initrd.map((file, index) => urls.bootFile(boot, file, index)),
    args: [...splitCmdline(boot.cmdline), ...extra],
    selfUrl: urls.script(mac),
  };
}

/** The kernel arguments each installer needs to find its answer file, and how it reports back. */
function flavourArgs(input: PolicyInput, boot: Boot, deployment: Deployment, token: string): string[] {
  const answers = input.urls.answers(input.mac, token);
  const hostname = deployment.hostname?.split('.')[0] ?? deployment.name;
  switch (deployment.type ?? boot.flavour) {
    case 'preseed':
      // d-i reads these before it fetches the preseed file (debian-installer appendix B.2.2 "auto mode").
      // The NIC by MAC: on a multi-NIC machine "auto" may pick one that cannot reach us.
      return [
        'auto=true',
        'priority=critical',
        `url=${answers}preseed.cfg`,
        `hostname=${hostname}`,
        `netcfg/choose_interface=${input.mac}`,
        'locale=en_US.UTF-8',
        'keymap=us',
      ];
    case 'kickstart': {
      const tree = input.urls.isoTree(boot);
      return [`inst.ks=${answers}ks.cfg`, 'ip=dhcp', ...(tree ? [`inst.repo=${tree}`] : [])];
    }
    case 'autoinstall':
      // Subiquity: NoCloud seed over HTTP; casper fetches the ISO itself when the boot comes from one.
      return [
        'autoinstall',
        `ds=nocloud-net;s=${answers}`,
        'ip=dhcp',
        ...(boot.isoPath ? [`url=${input.urls.iso(boot)}`, 'cloud-config-url=/dev/null'] : []),
      ];
    default:
      return [];
  }
}

function splitCmdline(cmdline: string | undefined): string[] {
  return (cmdline ?? '').split(/\s+/).filter((word) => word !== '');
}

/** RFC 4173 §5 root path: iscsi:<server>:<protocol>:<port>:<LUN>:<target> (protocol and port may be empty). */
export function iscsiUri(iscsi: { server?: string; target?: string; lun: number }): string | undefined {
  if (iscsi.server === undefined || iscsi.target === undefined) return undefined;
  const [host, port = ''] = iscsi.server.split(':');
  return `iscsi:${host ?? ''}::${port}:${String(iscsi.lun)}:${iscsi.target}`;
}

/** One initiator name per machine, so a target's ACLs can tell machines apart. */
export function initiatorIqn(mac: string): string {
  return `iqn.2026-11.org.smelt:${mac.replaceAll(':', '-')}`;
}

/**
 * A diskless root, for the initramfs the boot's initrd is (deployment.live.style): Debian's initramfs-tools with
 * live-boot, or dracut. Every reboot starts clean (RAM overlay) or from the shared NFS root; the OS reports with
 * the smelt.phonehome URL on its command line, which marks the machine running.
 */
function liveArgs(input: PolicyInput, deployment: Deployment, token: string): string[] {
  const live = deployment.live ?? {};
  const dracut = live.style === 'dracut';
  const phoneHome = `smelt.phonehome=${input.urls.hook(input.mac, token, 'installed')}`;
  if (live.nfsRoot !== undefined) {
    const mode = live.rw === true ? 'rw' : 'ro';
    return dracut
      ? [`root=nfs:${live.nfsRoot}`, 'ip=dhcp', mode, phoneHome]
      : ['boot=nfs', 'root=/dev/nfs', `nfsroot=${live.nfsRoot}`, 'ip=dhcp', mode, phoneHome];
  }
  if (live.rootfs !== undefined) {
    const url = live.rootfs.startsWith('/') ? `${input.urls.base}${live.rootfs}` : live.rootfs;
    return dracut
      ? [`root=live:${url}`, 'rd.live.ram=1', 'rd.live.overlay.overlayfs=1', 'ip=dhcp', phoneHome]
      : ['boot=live', `fetch=${url}`, 'ip=dhcp', phoneHome];
  }
  return [phoneHome];
}
