/**
 * Ubuntu autoinstall (Subiquity, Ubuntu Server 20.04 and later), served as a cloud-init NoCloud seed: `user-data`
 * is a `#cloud-config` whose one top-level key is `autoinstall` (version 1), `meta-data` names the instance.
 * Reference: https://canonical-subiquity.readthedocs-hosted.com/en/latest/reference/autoinstall-reference.html
 * (and Netplan's reference for `network`, cloud-init's module reference for the target's `user-data`).
 *
 * The YAML comes from `toYaml` (escape.ts): every string double-quoted, so any value, newlines and `: #` included,
 * reads back as the same string. Commands are argv lists, which Subiquity runs without a shell; the one shell
 * snippet gets its URL as "$1", never spliced into the script.
 */
import { createHash } from 'node:crypto';
import type { RenderContext } from './context.ts';
import {
  lineValue,
  refuseDisk,
  refuseHost,
  refuseIpv4,
  refuseMac,
  refusePackage,
  refusePrefix,
  refuseUrl,
  refuseUser,
  toYaml,
} from './escape.ts';
import type { YamlMap } from './escape.ts';

const LOCALE = 'en_US.UTF-8';
const KEYMAP = 'us';
/** curl in the live installer; `--noproxy '*'` keeps the phone-home away from the install proxy. */
const CURL = ['curl', '-fsS', '--noproxy', '*', '--retry', '5', '-o', '/dev/null'];
/** Where the error report's tail comes from (Subiquity 22.04 and later). */
const INSTALLER_LOG = '/var/log/installer/subiquity-server-debug.log';

export function renderAutoinstallUserData(context: RenderContext): string {
  const { machine, deployment, urls } = context;
  const user = refuseUser(deployment.user);
  const mac = refuseMac(machine.mac);
  const hasPassword = deployment.passwordHash !== undefined;
  const ntp = deployment.ntp.map((server) => refuseHost('ntp', server));
  const keys = deployment.sshKeys.map((key) => lineValue('sshKeys', key));
  if (deployment.mirror !== undefined) refuseUrl('mirror', deployment.mirror);
  if (deployment.proxy !== undefined) refuseUrl('proxy', deployment.proxy);

  // The installed system's cloud-init runs this on first boot, merged with what Subiquity writes for `identity`.
  const targetUserData: YamlMap = {
    ntp: ntp.length > 0 ? { enabled: true, servers: ntp } : undefined,
    // No password means sudo could never ask for one.
    write_files: hasPassword
      ? undefined
      : [{ path: '/etc/sudoers.d/90-smelt', content: `${user} ALL=(ALL) NOPASSWD:ALL\n`, permissions: '0440' }],
  };

  const autoinstall: YamlMap = {
    version: 1,
    locale: LOCALE,
    keyboard: { layout: KEYMAP },
    network: { version: 2, ethernets: { nic0: netplan(context, mac) } },
    // Used by the installer and written to the installed system's apt and snapd configuration.
    proxy: deployment.proxy,
    // The legacy `primary` form works on every Subiquity; `geoip: false` keeps a country mirror from replacing it.
    apt:
      deployment.mirror === undefined
        ? undefined
        : { geoip: false, primary: [{ arches: ['default'], uri: deployment.mirror }] },
    // Without a match the installer takes the largest disk.
    storage: {
      layout: {
        name: 'lvm',
        'sizing-policy': 'all',
        match: deployment.disk === undefined ? undefined : { path: refuseDisk(deployment.disk) },
      },
    },
    identity: {
      hostname: deployment.hostname,
      username: user,
      // Without a hash, `*` matches no password at all: SSH keys only (and no password over SSH below).
      password: deployment.passwordHash ?? '*',
    },
    ssh: { 'install-server': true, 'authorized-keys': keys, 'allow-pw': hasPassword },
    packages: deployment.packages.length > 0 ? deployment.packages.map(refusePackage) : undefined,
    'user-data': Object.values(targetUserData).some((v) => v !== undefined) ? targetUserData : undefined,
    // Last step of a successful install, just before the reboot.
    'late-commands': [[...CURL, '-d', '', lineValue('urls.phoneHome', urls.phoneHome)]],
    'error-commands': [
      [
        'sh',
        '-c',
        `tail -n 50 ${INSTALLER_LOG} 2>/dev/null | curl -fsS --noproxy '*' --retry 5 -o /dev/null -H 'Content-Type: text/plain' --data-binary @- "$1"`,
        'smelt-failed',
        lineValue('urls.failed', urls.failed),
      ],
    ],
  };
  return [
    '#cloud-config',
    `# Ubuntu autoinstall for ${mac}, rendered by smelt.`,
    '# Reference: https://canonical-subiquity.readthedocs-hosted.com/en/latest/reference/autoinstall-reference.html',
    toYaml({ autoinstall }),
  ].join('\n');
}

/** Netplan v2 for the NIC this machine booted from, matched by MAC whatever the kernel names it. */
function netplan(context: RenderContext, mac: string): YamlMap {
  const { network, domain } = context.deployment;
  const dns = network.dns.map((ip) => refuseIpv4('network.dns', ip));
  const nameservers =
    dns.length > 0 || domain !== undefined
      ? { addresses: dns.length > 0 ? dns : undefined, search: domain === undefined ? undefined : [domain] }
      : undefined;
  if (network.mode === 'dhcp') return { match: { macaddress: mac }, dhcp4: true, nameservers };
  const address = `${refuseIpv4('network.address', network.address)}/${refusePrefix(network.prefix)}`;
  return {
    match: { macaddress: mac },
    dhcp4: false,
    addresses: [address],
    // `to: 0.0.0.0/0` rather than `default`, which Netplan before 0.103 (Ubuntu 20.04) does not know.
    routes:
      network.gateway === undefined
        ? undefined
        : [{ to: '0.0.0.0/0', via: refuseIpv4('network.gateway', network.gateway) }],
    nameservers,
  };
}

/**
 * NoCloud meta-data. The instance-id is a digest of the deployment's name and MAC: stable for a deployment, new
 * for a redeploy under another name, and always a safe file name (cloud-init makes a directory of it).
 */
export function renderAutoinstallMetaData(context: RenderContext): string {
  const { machine, deployment } = context;
  const digest = createHash('sha256')
    .update(`${deployment.name}\n${refuseMac(machine.mac)}`)
    .digest('hex');
  return toYaml({ 'instance-id': `smelt-${digest.slice(0, 16)}`, 'local-hostname': deployment.hostname });
}
