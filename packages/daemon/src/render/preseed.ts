/**
 * Debian installer (d-i) preseed file, as an operator would write it for Debian bookworm and later.
 * Reference: the bookworm example preseed (https://www.debian.org/releases/bookworm/example-preseed.txt) and the
 * installation guide, appendix B (https://www.debian.org/releases/bookworm/amd64/apb.en.html).
 *
 * Format: `owner question type value`, the value running verbatim to the end of the line (debconf-set-selections).
 * Values with line breaks, or ending in a backslash (a continuation), are refused (escape.ts `debconfValue`).
 * The early and late commands are shell: every value in them is one single-quoted word (`shQuote`).
 *
 * d-i reads this file after it has brought the network up by DHCP, so the boot's kernel command line must carry
 * what is needed before that (auto=true priority=critical url=..., and the interface); the static settings below
 * take effect by re-running netcfg from preseed/early_command, the installation guide's documented workaround.
 */
import type { RenderContext } from './context.ts';
import {
  debconfValue,
  lineValue,
  refuseDisk,
  refuseHost,
  refuseIpv4,
  refuseMac,
  refusePackage,
  refuseUrl,
  refuseUser,
  shQuote,
} from './escape.ts';

const LOCALE = 'en_US.UTF-8';
const KEYMAP = 'us';
const TIMEZONE = 'Etc/UTC';
const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
/** d-i's own busybox wget; `-Y off` keeps the phone-home away from the install proxy. */
const WGET = 'wget -Y off -q -O /dev/null';

/** One preseed line; an empty value leaves nothing after the type, which still answers the question. */
function set(question: string, type: string, value: string | boolean, owner = 'd-i'): string {
  const text = typeof value === 'boolean' ? String(value) : debconfValue(question, value);
  return text === '' ? `${owner} ${question} ${type}` : `${owner} ${question} ${type} ${text}`;
}

/** A shell command list as a `string` answer, one piece per backslash-continued line (debconf joins them). */
function shell(question: string, pieces: readonly string[]): string[] {
  const last = pieces.length - 1;
  return [
    `d-i ${question} string \\`,
    ...pieces.map((piece, i) => `    ${debconfValue(question, piece)}${i < last ? ' \\' : ''}`),
  ];
}

export function renderPreseed(context: RenderContext): string {
  const { machine, deployment } = context;
  const { network } = deployment;
  const user = refuseUser(deployment.user);
  const mac = refuseMac(machine.mac);
  const disk = deployment.disk === undefined ? undefined : refuseDisk(deployment.disk);
  const ntp = deployment.ntp.map((server) => refuseHost('ntp', server));
  const packages = deployment.packages.map(refusePackage);
  // The installed system's time sync (the drop-in late_command writes) needs its client.
  if (ntp.length > 0 && !packages.includes('systemd-timesyncd')) packages.push('systemd-timesyncd');
  const uefi = machine.firmware === 'uefi';

  const lines = [
    '#_preseed_V1',
    `# Debian installer preseed for ${mac}, rendered by smelt.`,
    '# Reference: https://www.debian.org/releases/bookworm/example-preseed.txt',
    '',
    '### Localization',
    set('debian-installer/locale', 'string', LOCALE),
    set('keyboard-configuration/xkb-keymap', 'select', KEYMAP),
    '',
    '### Network',
    // netcfg takes a link-layer address as well as a name (netcfg_get_interface): the NIC this machine booted from.
    set('netcfg/choose_interface', 'select', mac),
  ];
  // With DHCP, d-i takes its name servers from the lease: netcfg has no question for extra ones.
  if (network.mode === 'static') {
    lines.push(
      set('netcfg/disable_autoconfig', 'boolean', true),
      set('netcfg/get_ipaddress', 'string', refuseIpv4('network.address', network.address)),
      set('netcfg/get_netmask', 'string', refuseIpv4('network.netmask', network.netmask)),
    );
    if (network.gateway === undefined) lines.push(set('netcfg/no_default_route', 'boolean', true));
    else lines.push(set('netcfg/get_gateway', 'string', refuseIpv4('network.gateway', network.gateway)));
    lines.push(
      set('netcfg/get_nameservers', 'string', network.dns.map((ip) => refuseIpv4('network.dns', ip)).join(' ')),
      set('netcfg/confirm_static', 'boolean', true),
      '# This file was fetched over DHCP: configure the interface again, statically (installation guide B.4.2).',
      set('preseed/early_command', 'string', 'kill-all-dhcp; netcfg'),
    );
  }
  lines.push(
    set('netcfg/get_hostname', 'string', deployment.hostname),
    set('netcfg/get_domain', 'string', deployment.domain ?? ''),
    // Wins over whatever DHCP or reverse DNS say.
    set('netcfg/hostname', 'string', deployment.hostname),
    set('netcfg/wireless_wep', 'string', ''),
    set('hw-detect/load_firmware', 'boolean', true),
    '',
    '### Mirror',
    ...mirror(deployment.mirror ?? DEFAULT_MIRROR, deployment.proxy),
    '',
    '### Accounts: root locked, the user gets sudo',
    set('passwd/root-login', 'boolean', false),
    set('passwd/make-user', 'boolean', true),
    set('passwd/user-fullname', 'string', user),
    set('passwd/username', 'string', user),
    // Without a hash, `*` matches no password at all: the user logs in with SSH keys only.
    set('passwd/user-password-crypted', 'password', deployment.passwordHash ?? '*'),
    '',
    '### Clock',
    set('clock-setup/utc', 'boolean', true),
    set('time/zone', 'string', TIMEZONE),
    set('clock-setup/ntp', 'boolean', ntp.length > 0),
  );
  // d-i itself syncs against one server; the installed system gets all of them (late_command).
  if (ntp[0] !== undefined) lines.push(set('clock-setup/ntp-server', 'string', ntp[0]));
  lines.push('', '### Partitioning: the whole disk, LVM, guided');
  if (disk === undefined) {
    lines.push(
      '# No disk named: take the first one the installer lists, for partman and for GRUB alike.',
      set(
        'partman/early_command',
        'string',
        'disk="$(list-devices disk | head -n1)"; debconf-set partman-auto/disk "$disk"; ' +
          'debconf-set grub-installer/bootdev "$disk"',
      ),
    );
  } else {
    lines.push(set('partman-auto/disk', 'string', disk));
  }
  lines.push(
    set('partman-auto/method', 'string', 'lvm'),
    set('partman-auto-lvm/guided_size', 'string', 'max'),
    set('partman-lvm/device_remove_lvm', 'boolean', true),
    set('partman-md/device_remove_md', 'boolean', true),
    set('partman-lvm/confirm', 'boolean', true),
    set('partman-lvm/confirm_nooverwrite', 'boolean', true),
    set('partman-auto/choose_recipe', 'select', 'atomic'),
  );
  if (uefi) {
    lines.push(
      set('partman-efi/non_efi_system', 'boolean', true),
      set('partman-partitioning/choose_label', 'select', 'gpt'),
      set('partman-partitioning/default_label', 'string', 'gpt'),
    );
  }
  lines.push(
    set('partman-partitioning/confirm_write_new_label', 'boolean', true),
    set('partman/choose_partition', 'select', 'finish'),
    set('partman/confirm', 'boolean', true),
    set('partman/confirm_nooverwrite', 'boolean', true),
    '',
    '### Packages',
    set('tasksel/first', 'multiselect', 'standard, ssh-server', 'tasksel'),
  );
  if (packages.length > 0) lines.push(set('pkgsel/include', 'string', packages.join(' ')));
  lines.push(
    set('pkgsel/upgrade', 'select', 'safe-upgrade'),
    set('popularity-contest/participate', 'boolean', false, 'popularity-contest'),
    '',
    '### Boot loader',
    set('grub-installer/only_debian', 'boolean', true),
    set('grub-installer/with_other_os', 'boolean', true),
  );
  if (disk !== undefined) lines.push(set('grub-installer/bootdev', 'string', disk));
  // Firmware that forgets its boot entries still finds \EFI\BOOT\BOOTX64.EFI.
  if (uefi) lines.push(set('grub-installer/force-efi-extra-removable', 'boolean', true));
  lines.push(
    '',
    '### Finish: SSH keys, sudo, time sync, then tell smelt (or tell it that this failed)',
    ...shell('preseed/late_command', lateCommand(context, user, ntp)),
    set('finish-install/reboot_in_progress', 'note', ''),
  );
  return `${lines.join('\n')}\n`;
}

function mirror(url: string, proxy: string | undefined): string[] {
  const parsed = refuseUrl('mirror', url);
  const protocol = parsed.protocol.slice(0, -1);
  const directory = parsed.pathname.length > 1 ? parsed.pathname.replace(/\/$/, '') : parsed.pathname;
  if (proxy !== undefined) refuseUrl('proxy', proxy);
  return [
    set('mirror/country', 'string', 'manual'),
    set('mirror/protocol', 'string', protocol),
    set(`mirror/${protocol}/hostname`, 'string', parsed.host),
    set(`mirror/${protocol}/directory`, 'string', directory),
    // Written into the installed system's apt configuration too.
    set(`mirror/${protocol}/proxy`, 'string', proxy ?? ''),
  ];
}

/** The late_command as continuation-line pieces: steps joined by `&&`, the failure report after `||`. */
function lateCommand(context: RenderContext, user: string, ntp: readonly string[]): string[] {
  const { deployment, urls } = context;
  const steps: string[] = [];
  if (deployment.sshKeys.length > 0) {
    const dir = `/home/${user}/.ssh`;
    const keys = deployment.sshKeys.map((key) => shQuote(lineValue('sshKeys', key), 'sshKeys'));
    steps.push(
      `mkdir -p /target${dir}`,
      `printf '%s\\n' ${keys.join(' ')} > /target${dir}/authorized_keys`,
      `chmod 0700 /target${dir} && chmod 0600 /target${dir}/authorized_keys`,
      `in-target chown -R ${user}: ${dir}`,
    );
  }
  if (deployment.passwordHash === undefined) {
    // No password means sudo could never ask for one.
    steps.push(
      `printf '%s\\n' ${shQuote(`${user} ALL=(ALL) NOPASSWD:ALL`)} > /target/etc/sudoers.d/90-smelt`,
      'chmod 0440 /target/etc/sudoers.d/90-smelt',
    );
  }
  if (ntp.length > 0) {
    const dir = '/target/etc/systemd/timesyncd.conf.d';
    steps.push(`mkdir -p ${dir}`, `printf '%s\\n' '[Time]' ${shQuote(`NTP=${ntp.join(' ')}`)} > ${dir}/smelt.conf`);
  }
  const phoneHome = shQuote(lineValue('urls.phoneHome', urls.phoneHome));
  const failed = shQuote(lineValue('urls.failed', urls.failed));
  return [
    ...steps.map((step) => `${step} &&`),
    `${WGET} --post-data '' ${phoneHome} ||`,
    `${WGET} --header 'Content-Type: text/plain' --post-data 'preseed late_command failed' ${failed}`,
  ];
}
