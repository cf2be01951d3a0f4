import { Flags, type Interfaces } from '@oclif/core';
import { deploymentTypes, liveStyles } from '@smelt/shared/deployment';
import { usageFailure } from '../failure.ts';
import { readSshKeys } from './ssh-keys.ts';
import { definedOnly, parseKeyValues, splitList } from './values.ts';

/** Repeatable flags take one value per occurrence, so that `--dns 10.0.0.1 web1` leaves web1 to the NAME argument. */
const list = (description: string) => Flags.string({ description, multiple: true, multipleNonGreedy: true });

/** Everything about a deployment that `create deployment` sets and `update deployment` changes. */
export const deploymentSettingFlags = {
  boot: Flags.string({ description: 'the boot to install or run (see `smeltctl get boots`)' }),
  deploymentType: Flags.option({
    options: deploymentTypes,
    aliases: ['deployment-type', 'deploymenttype', 'type'],
    description: 'what kind of deployment this is',
  })(),
  address: Flags.string({ description: 'IPv4 address reserved for the machine' }),
  hostname: Flags.string({ description: 'host name to give the machine' }),
  gateway: Flags.string({ description: 'default gateway' }),
  netmask: Flags.string({ description: 'netmask, 255.255.255.0 or 24' }),
  dns: list('DNS servers (comma-separated or repeated)'),
  ntp: list('NTP servers (comma-separated or repeated)'),
  domain: Flags.string({ description: 'DNS search domain' }),
  packages: list('extra packages to install (comma-separated or repeated)'),
  sshKey: Flags.string({
    description: 'file of SSH public keys to authorise (repeatable)',
    aliases: ['ssh-key', 'sshkey'],
    multiple: true,
    multipleNonGreedy: true,
  }),
  user: Flags.string({ description: 'user account to create' }),
  'password-hash': Flags.string({
    description: 'crypt(3) hash for the user, e.g. from `mkpasswd -m sha-512`',
    aliases: ['passwordHash', 'passwordhash'],
  }),
  disk: Flags.string({ description: 'disk to install on, e.g. /dev/sda' }),
  mirror: Flags.string({ description: 'package mirror URL' }),
  proxy: Flags.string({ description: 'HTTP proxy URL for the installer' }),
  nfsRoot: Flags.string({ description: 'live: NFS root SERVER:/export/path', aliases: ['nfsroot', 'nfs-root'] }),
  rw: Flags.boolean({ description: 'live: mount the NFS root read-write', allowNo: true }),
  rootfs: Flags.string({
    description: 'live: squashfs image fetched into RAM (http(s) URL, or a path the daemon serves)',
  }),
  liveStyle: Flags.option({
    options: liveStyles,
    aliases: ['live-style', 'livestyle'],
    description: "live: the boot's initramfs (Debian live-boot, or dracut) [default: live-boot]",
  })(),
  iscsiTarget: Flags.string({
    description: 'live: iSCSI root target (iqn...)',
    aliases: ['iscsi-target', 'iscsitarget'],
  }),
  iscsiServer: Flags.string({
    description: 'live: iSCSI server HOST[:PORT]',
    aliases: ['iscsi-server', 'iscsiserver'],
  }),
  iscsiLun: Flags.integer({ description: 'live: iSCSI LUN [default: 0]', min: 0, max: 255, aliases: ['iscsi-lun'] }),
  iscsiBase: Flags.string({
    description:
      "live: a disk image on the daemon's host; the machine gets a copy-on-write iSCSI disk of its own over it " +
      '(daemon config iscsi.enabled)',
    aliases: ['iscsi-base', 'iscsibase'],
  }),
  image: Flags.string({
    description: 'image: the disk image to write (.img, .img.gz; http(s) URL or a path the daemon serves)',
  }),
  grow: Flags.boolean({ description: 'image: grow the last partition to the end of the disk' }),
  imageSha256: Flags.string({
    description: 'image: SHA-256 of the uncompressed image, checked after writing',
    aliases: ['image-sha256', 'imagesha256'],
  }),
  var: Flags.string({
    description: 'template variable KEY=VALUE (repeatable)',
    multiple: true,
    multipleNonGreedy: true,
  }),
};
export type DeploymentSettingFlagValues = Interfaces.InferredFlags<typeof deploymentSettingFlags>;

/** Where a deployment field and the flag that sets it are spelled differently, for messages. */
export const deploymentFlagFor: Readonly<Record<string, string>> = {
  mac: 'MAC',
  type: 'deploymentType',
  sshKeys: 'sshKey',
  passwordHash: 'password-hash',
  vars: 'var',
  'live.nfsRoot': 'nfsRoot',
  'live.rootfs': 'rootfs',
  'live.style': 'liveStyle',
  'live.iscsi.target': 'iscsiTarget',
  'live.iscsi.server': 'iscsiServer',
  'live.iscsi.lun': 'iscsiLun',
  'live.iscsi.base': 'iscsiBase',
  'image.url': 'image',
  'image.sha256': 'imageSha256',
};

/** The JSON fields the settings flags add up to; flags not given are absent. */
export async function deploymentSettingsFromFlags(
  flags: Partial<DeploymentSettingFlagValues>,
): Promise<Record<string, unknown>> {
  return definedOnly({
    boot: flags.boot,
    type: flags.deploymentType,
    address: flags.address,
    hostname: flags.hostname,
    gateway: flags.gateway,
    netmask: flags.netmask,
    dns: splitList(flags.dns),
    ntp: splitList(flags.ntp),
    domain: flags.domain,
    packages: splitList(flags.packages),
    sshKeys: await readSshKeys(flags.sshKey),
    user: flags.user,
    passwordHash: flags['password-hash'],
    disk: flags.disk,
    mirror: flags.mirror,
    proxy: flags.proxy,
    vars: parseKeyValues(flags.var, 'var'),
    live: liveFromFlags(flags),
    image:
      flags.image === undefined
        ? flags.imageSha256 === undefined
          ? undefined
          : usageRefusal('--imageSha256 goes with --image')
        : definedOnly({ url: flags.image, sha256: flags.imageSha256, grow: flags.grow }),
  });
}

function usageRefusal(message: string): never {
  throw usageFailure(message);
}

/** The diskless settings (deployment.live), when any of their flags is given. */
function liveFromFlags(flags: Partial<DeploymentSettingFlagValues>): Record<string, unknown> | undefined {
  if ((flags.iscsiTarget === undefined) !== (flags.iscsiServer === undefined)) {
    throw usageFailure('--iscsiTarget and --iscsiServer go together');
  }
  if (flags.iscsiBase !== undefined && flags.iscsiTarget !== undefined) {
    throw usageFailure('--iscsiBase makes a disk of its own: give it without --iscsiTarget and --iscsiServer');
  }
  const live = definedOnly({
    nfsRoot: flags.nfsRoot,
    rw: flags.rw,
    rootfs: flags.rootfs,
    style: flags.liveStyle,
    iscsi:
      flags.iscsiBase !== undefined
        ? { base: flags.iscsiBase }
        : flags.iscsiTarget === undefined
          ? undefined
          : definedOnly({ target: flags.iscsiTarget, server: flags.iscsiServer, lun: flags.iscsiLun }),
  });
  return Object.keys(live).length > 0 ? live : undefined;
}

/** `--unset FIELD` accepts the field's JSON name or any spelling of its flag; the identity fields cannot be unset. */
const unsettable: Readonly<Record<string, string>> = {
  address: 'address',
  hostname: 'hostname',
  gateway: 'gateway',
  netmask: 'netmask',
  dns: 'dns',
  ntp: 'ntp',
  domain: 'domain',
  packages: 'packages',
  user: 'user',
  disk: 'disk',
  mirror: 'mirror',
  proxy: 'proxy',
  type: 'type',
  deploymenttype: 'type',
  'deployment-type': 'type',
  sshkey: 'sshKeys',
  sshkeys: 'sshKeys',
  'ssh-key': 'sshKeys',
  passwordhash: 'passwordHash',
  'password-hash': 'passwordHash',
  var: 'vars',
  vars: 'vars',
  live: 'live',
  image: 'image',
};

/** The fields `--unset` names, as JSON field names (a merge patch sets each to null). */
export function fieldsToUnset(names: readonly string[] | undefined): string[] {
  return (splitList(names) ?? []).map((name) => {
    const field = unsettable[name.replace(/^--/, '').toLowerCase()];
    if (field === undefined) {
      const choices = [...new Set(Object.values(unsettable))].join(', ');
      throw usageFailure(`--unset: "${name}" is not a field that can be unset; use one of: ${choices}`);
    }
    return field;
  });
}
