/**
 * iPXE scripts (https://ipxe.org/scripting), one per machine state, rendered at request time (DESIGN.md §3).
 * Every value placed in a script is checked by `word`: iPXE expands `${...}` anywhere in a line and splits
 * arguments on spaces, so a value with a space, a `$`, a quote or a control character could change the command;
 * such a value is refused, never passed through. URLs are built percent-encoded by the caller.
 */

export interface InstallerScript {
  kind: 'installer';
  mac: string;
  deployment: string;
  /** Shown on the console: "ubuntu (autoinstall)". */
  what: string;
  kernelUrl: string;
  initrdUrls: string[];
  /** The kernel command line after the initrd= arguments, already assembled. */
  args: string[];
  /** This script's own URL, retried after a failed boot. */
  selfUrl: string;
}

export type ScriptSpec =
  /** A machine nobody has deployed (or whose install failed): wait, poll, boot the moment it is deployed. */
  | { kind: 'hold'; mac: string; selfUrl: string; reason: 'free' | 'failed' | 'wiping'; pollSeconds: number }
  | InstallerScript
  /** Too many machines are downloading: wait and ask again (admission control). */
  | { kind: 'wait'; mac: string; selfUrl: string; position: number; waitSeconds: number }
  /** A diskless machine whose root is an iSCSI target (RFC 4173 URI). */
  | { kind: 'sanboot'; mac: string; deployment: string; uri: string; initiator: string }
  /** Installed: boot the local disk, every time, until redeployed. */
  | { kind: 'local'; mac: string; deployment: string }
  /** The unknown-machine policy says so. */
  | { kind: 'exit' | 'reboot' | 'poweroff'; mac: string };

export class ScriptValueError extends Error {
  constructor(what: string, value: string) {
    super(
      `${what} cannot go into a boot script: ${JSON.stringify(value)} (spaces, $, quotes and control characters are refused)`,
    );
    this.name = 'ScriptValueError';
  }
}

/** One argument: no whitespace, no `$` (iPXE's expansion), no quotes or backslashes, printable ASCII only. */
function word(what: string, value: string): string {
  if (!/^[\x21-\x7e]+$/.test(value) || /[$"'\\]/.test(value)) throw new ScriptValueError(what, value);
  return value;
}

/** Free text for `echo`: printable ASCII without `$`; anything else becomes '?'. */
function text(value: string): string {
  return value.replace(/[^\x20-\x7e]|\$/g, '?');
}

function basename(url: string): string {
  const path = url.split(/[?#]/)[0] ?? url;
  return path.slice(path.lastIndexOf('/') + 1) || 'initrd';
}

export function renderIpxe(spec: ScriptSpec): string {
  const lines = ['#!ipxe'];
  switch (spec.kind) {
    case 'hold': {
      const why = {
        free: `this machine (${spec.mac}) is free; it boots as soon as it is deployed`,
        failed: `the installation of this machine (${spec.mac}) failed; smeltctl reinstall ${spec.mac} retries it`,
        wiping: `this machine (${spec.mac}) is to be wiped, but no wipe boot is configured (lifecycle.wipeBoot)`,
      }[spec.reason];
      lines.push(
        `echo Smelt: ${text(why)}`,
        ':wait',
        `sleep ${String(spec.pollSeconds)}`,
        // --replace: the poll replaces this script instead of nesting inside it, so it can run for days.
        `chain --replace --autofree ${word('script URL', spec.selfUrl)} || goto wait`,
      );
      break;
    }
    case 'installer': {
      const initrdNames = spec.initrdUrls.map((url) => `initrd=${word('initrd name', basename(url))}`);
      lines.push(
        `echo Smelt: installing ${text(spec.deployment)} on ${spec.mac}: ${text(spec.what)}`,
        // UEFI: the kernel's EFI stub loads each initrd by the name given in initrd= (FIELD-NOTES).
        [
          'kernel',
          word('kernel URL', spec.kernelUrl),
          ...initrdNames,
          ...spec.args.map((arg) => word('kernel argument', arg)),
        ].join(' '),
        ...spec.initrdUrls.map((url) => `initrd ${word('initrd URL', url)}`),
        'boot || goto failed',
        ':failed',
        'echo Smelt: the installer did not boot; trying again in 30 s',
        'sleep 30',
        `chain --replace --autofree ${word('script URL', spec.selfUrl)}`,
      );
      break;
    }
    case 'wait':
      lines.push(
        `echo Smelt: busy installing other machines; ${String(spec.position)} ahead of ${spec.mac}, asking again in ${String(spec.waitSeconds)} s`,
        `sleep ${String(spec.waitSeconds)}`,
        `chain --replace --autofree ${word('script URL', spec.selfUrl)}`,
      );
      break;
    case 'sanboot':
      lines.push(
        `echo Smelt: ${text(spec.deployment)} (${spec.mac}) boots its iSCSI root ${word('iSCSI URI', spec.uri)}`,
        `set initiator-iqn ${word('initiator name', spec.initiator)}`,
        // --keep: the OS finds the disk through the iBFT iPXE leaves in memory.
        `sanboot --keep ${spec.uri} || goto failed`,
        ':failed',
        'echo Smelt: the iSCSI root did not boot; leaving network boot in 30 s',
        'sleep 30',
        'exit',
      );
      break;
    case 'local':
      lines.push(
        `echo Smelt: ${text(spec.deployment)} (${spec.mac}) is installed; booting from the local disk`,
        // UEFI: leaving iPXE returns to the firmware's boot manager, which tries the next entry (the disk).
        // BIOS: sanboot the first hard disk; if that fails, leave and let the BIOS try its next device.
        'iseq ${platform} efi && exit ||',
        'sanboot --no-describe --drive 0x80 || exit',
      );
      break;
    case 'exit':
      lines.push(`echo Smelt: ${spec.mac} is not deployed; leaving network boot`, 'exit');
      break;
    case 'reboot':
      lines.push(`echo Smelt: ${spec.mac} is not deployed; rebooting`, 'sleep 5', 'reboot');
      break;
    case 'poweroff':
      lines.push(`echo Smelt: ${spec.mac} is not deployed; powering off`, 'sleep 5', 'poweroff');
      break;
  }
  return `${lines.join('\n')}\n`;
}
