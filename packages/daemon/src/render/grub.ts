import { ScriptValueError, type ScriptSpec } from './ipxe.ts';
import { treePath } from './pxelinux.ts';

/**
 * GRUB 2 network configs (grub/grub.cfg-01-<mac>, the first file a netbooted GRUB looks for) for sites that
 * chain to GRUB. Every argument is single-quoted: GRUB's shell would otherwise split on `;` (as in Ubuntu's
 * ds=nocloud-net;s=...) and expand `$`; the values themselves never contain a quote (they are refused).
 */
export function renderGrub(spec: ScriptSpec, baseUrl: string): string {
  const lines = ['# Smelt: rendered for this machine at each request; edits here are not kept', 'set timeout=0'];
  switch (spec.kind) {
    case 'installer':
      lines.push(
        `menuentry ${quote(`Smelt: install ${spec.deployment}`)} {`,
        `  linux ${path(spec.kernelUrl, baseUrl)} ${spec.args.map(quote).join(' ')}`,
        `  initrd ${spec.initrdUrls.map((url) => path(url, baseUrl)).join(' ')}`,
        '}',
      );
      break;
    case 'local':
    case 'exit':
      // UEFI: leave GRUB, the firmware tries its next boot entry (the disk); BIOS: chain the first disk's MBR.
      lines.push(
        `menuentry ${quote('Smelt: local disk')} {`,
        '  if [ "${grub_platform}" = "efi" ]; then exit; fi',
        '  set root=(hd0)',
        '  chainloader +1',
        '}',
      );
      break;
    case 'sanboot':
    case 'wait':
    case 'hold':
    case 'reboot':
    case 'poweroff':
      lines.push(
        `menuentry ${quote('Smelt: iPXE')} {`,
        '  if [ "${grub_platform}" = "efi" ]; then chainloader /ipxe.efi; else linux16 /ipxe.lkrn; fi',
        '}',
      );
      break;
  }
  return `${lines.join('\n')}\n`;
}

/** Our files by TFTP from the tree; another server's by GRUB's (http,host:port)/path device syntax. */
function path(url: string, baseUrl: string): string {
  const local = treePath(url, baseUrl);
  if (local.startsWith('/')) return quote(local);
  const match = /^http:\/\/([^/]+)(\/.*)$/.exec(url);
  if (!match?.[1] || !match[2]) throw new ScriptValueError('GRUB file (http:// only)', url);
  return quote(`(http,${match[1]})${match[2]}`);
}

function quote(text: string): string {
  if (!/^[\x20-\x7e]+$/.test(text) || text.includes("'")) throw new ScriptValueError('GRUB value', text);
  return `'${text}'`;
}
