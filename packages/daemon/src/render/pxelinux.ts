import { ScriptValueError, type ScriptSpec } from './ipxe.ts';

/**
 * PXELINUX configs (syslinux.org/wiki "PXELINUX", pxelinux.cfg/01-<mac>) for sites that chain to PXELINUX instead
 * of iPXE. Same decisions as the iPXE script: install, boot the local disk, or hand over to iPXE (ipxe.lkrn from
 * the tree) for everything that needs polling — PXELINUX cannot wait for a deployment by itself.
 * Our own URLs become tree paths, fetched by TFTP (plain pxelinux.0 speaks only TFTP); other http:// URLs stay
 * (lpxelinux.0 fetches them).
 */
export function renderPxelinux(spec: ScriptSpec, baseUrl: string): string {
  const lines = ['# Smelt: rendered for this machine at each request; edits here are not kept'];
  switch (spec.kind) {
    case 'installer':
      lines.push(
        'DEFAULT smelt',
        'LABEL smelt',
        `  KERNEL ${value('kernel', treePath(spec.kernelUrl, baseUrl))}`,
        `  INITRD ${spec.initrdUrls.map((url) => value('initrd', treePath(url, baseUrl))).join(',')}`,
        `  APPEND ${spec.args.map((arg) => value('kernel argument', arg)).join(' ')}`,
      );
      break;
    case 'local':
      lines.push('DEFAULT local', 'LABEL local', '  LOCALBOOT 0');
      break;
    case 'exit':
      lines.push('DEFAULT local', 'LABEL local', '  LOCALBOOT -1');
      break;
    case 'sanboot':
    case 'wait':
    case 'hold':
    case 'reboot':
    case 'poweroff':
      // iPXE asks DHCP again and fetches its script, which holds, reboots or powers off as decided.
      lines.push('DEFAULT ipxe', 'LABEL ipxe', '  KERNEL ipxe.lkrn');
      break;
  }
  return `${lines.join('\n')}\n`;
}

/** http://<our base>/boots/x → /boots/x (TFTP, same tree); anything else unchanged. */
export function treePath(url: string, baseUrl: string): string {
  return url.startsWith(`${baseUrl}/`) ? decodeURI(url.slice(baseUrl.length)) : url;
}

/** A line-safe value: printable ASCII, no spaces (arguments are space-separated), no control characters. */
function value(what: string, text: string): string {
  if (!/^[\x21-\x7e]+$/.test(text)) throw new ScriptValueError(what, text);
  return text;
}
