/**
 * Kickstart for Anaconda: RHEL, Rocky and Alma 9+, Fedora 33+ (`timesource` is new in those; on RHEL 8 replace
 * this template and use `timezone --ntpservers`). Reference: the pykickstart documentation,
 * https://pykickstart.readthedocs.io/en/latest/kickstart-docs.html (commands) and its sections chapter.
 *
 * pykickstart splits command lines with Python's shlex, which quotes like a POSIX shell, so every value is one
 * `shQuote` word: safe as a command option and in %pre/%post alike. Values with line breaks are refused
 * (`lineValue`): a newline could end a command, or close a section with `%end` and start commands of its own.
 */
import type { RenderContext } from './context.ts';
import {
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

const LANG = 'en_US.UTF-8';
const KEYMAP = 'us';
const TIMEZONE = 'Etc/UTC';
/** curl in the installer environment; `--noproxy '*'` keeps the phone-home away from any install proxy. */
const CURL = "curl -fsS --noproxy '*' --retry 5 -o /dev/null";
/** Written by %pre when no disk is named, pulled in by %include. */
const DISK_INCLUDE = '/tmp/smelt-disk.ks';

/** `--name=value`, the value one shell word. */
function opt(name: string, value: string, what = name): string {
  return `--${name}=${shQuote(lineValue(what, value), what)}`;
}

/** Anaconda names disks without /dev/: `sda`, `disk/by-id/...`. */
function drive(disk: string): string {
  return refuseDisk(disk).slice('/dev/'.length);
}

export function renderKickstart(context: RenderContext): string {
  const { machine, deployment, urls } = context;
  const { network } = deployment;
  const user = refuseUser(deployment.user);
  const mac = refuseMac(machine.mac);
  const fqdn = deployment.domain === undefined ? deployment.hostname : `${deployment.hostname}.${deployment.domain}`;

  const networkLine = [`network --device=${mac}`];
  if (network.mode === 'static') {
    networkLine.push(
      '--bootproto=static',
      `--ip=${refuseIpv4('network.address', network.address)}`,
      `--netmask=${refuseIpv4('network.netmask', network.netmask)}`,
    );
    if (network.gateway !== undefined) networkLine.push(`--gateway=${refuseIpv4('network.gateway', network.gateway)}`);
  } else {
    networkLine.push('--bootproto=dhcp');
  }
  if (network.dns.length > 0) {
    networkLine.push(`--nameserver=${network.dns.map((ip) => refuseIpv4('network.dns', ip)).join(',')}`);
  }
  networkLine.push(opt('hostname', fqdn, 'hostname'), '--activate');

  const lines = [
    `# Kickstart for ${mac}, rendered by smelt.`,
    '# Reference: https://pykickstart.readthedocs.io/en/latest/kickstart-docs.html',
    'text',
    `lang ${LANG}`,
    `keyboard --vckeymap=${KEYMAP} --xlayouts=${KEYMAP}`,
    `timezone ${TIMEZONE} --utc`,
    ...deployment.ntp.map((server) => `timesource --ntp-server=${shQuote(refuseHost('ntp', server))}`),
    networkLine.join(' '),
  ];
  if (deployment.mirror !== undefined) {
    // As written: anaconda substitutes $releasever and $basearch itself.
    refuseUrl('mirror', deployment.mirror);
    const url = [opt('url', deployment.mirror, 'mirror')];
    if (deployment.proxy !== undefined) {
      refuseUrl('proxy', deployment.proxy);
      url.push(opt('proxy', deployment.proxy, 'proxy'));
    }
    lines.push(`url ${url.join(' ')}`);
  } else {
    lines.push('# No mirror: the installation source comes from the boot (inst.repo= or the installer image).');
  }
  lines.push(
    'rootpw --lock',
    deployment.passwordHash === undefined
      ? // No password: the account is locked for password logins; SSH keys only.
        `user --name=${user} --groups=wheel --lock`
      : `user --name=${user} --groups=wheel --iscrypted ${opt('password', deployment.passwordHash, 'passwordHash')}`,
    ...deployment.sshKeys.map((key) => `sshkey --username=${user} ${shQuote(lineValue('sshKeys', key), 'sshKeys')}`),
    'firstboot --disable',
    'zerombr',
  );
  if (deployment.disk === undefined) {
    lines.push('# No disk named: %pre below picks the first one.', `%include ${DISK_INCLUDE}`);
  } else {
    const name = drive(deployment.disk);
    lines.push(
      `ignoredisk --only-use=${shQuote(name)}`,
      `clearpart --all --initlabel --drives=${shQuote(name)}`,
      `bootloader --boot-drive=${shQuote(name)}`,
    );
  }
  lines.push('autopart --type=lvm', 'reboot', '', '%packages', '@^minimal-environment');
  lines.push(...deployment.packages.map(refusePackage), '%end');

  if (deployment.disk === undefined) {
    lines.push(
      '',
      '%pre --log=/tmp/smelt-disk.log',
      '# The first whole disk that is neither removable, read-only nor zram.',
      'disk=$(lsblk -dno NAME,TYPE,RM,RO | awk \'$2 == "disk" && $3 == 0 && $4 == 0 && $1 !~ /^zram/ { print $1; exit }\')',
      `printf 'ignoredisk --only-use=%s\\nclearpart --all --initlabel --drives=%s\\nbootloader --boot-drive=%s\\n' "$disk" "$disk" "$disk" > ${DISK_INCLUDE}`,
      '%end',
    );
  }
  if (deployment.passwordHash === undefined) {
    lines.push(
      '',
      '%post --log=/root/smelt-post.log',
      '# No password means sudo could never ask for one.',
      `printf '%s\\n' ${shQuote(`${user} ALL=(ALL) NOPASSWD:ALL`)} > /etc/sudoers.d/90-smelt`,
      'chmod 0440 /etc/sudoers.d/90-smelt',
      '%end',
    );
  }
  lines.push(
    '',
    '# Last: everything before it has succeeded. Runs in the installer, which has curl.',
    '%post --nochroot --log=/tmp/smelt-phone-home.log',
    `${CURL} -d '' ${shQuote(lineValue('urls.phoneHome', urls.phoneHome))}`,
    '%end',
    '',
    '%onerror',
    `tail -n 50 /tmp/anaconda.log 2>/dev/null | ${CURL} -H 'Content-Type: text/plain' --data-binary @- ${shQuote(lineValue('urls.failed', urls.failed))}`,
    '%end',
  );
  return `${lines.join('\n')}\n`;
}
