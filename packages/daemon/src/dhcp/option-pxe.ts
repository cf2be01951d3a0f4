/**
 * PXE vendor options carried in option 43 by a server that answers a `PXEClient` (PXE spec 2.1 §2.4.4 and table
 * 2-1; RFC 4578 §2.3 refers to it): 6 discovery control, 8 boot servers, 9 boot menu, 10 menu prompt, ending with
 * END (255). Pure; re-exported by options.ts.
 */
import { formatIpv4 } from './header.ts';
import { decodeEncapsulated, encodeEncapsulated, ipValue, latin1Value, u16Value } from './option-values.ts';

export const PxeSubOption = { discoveryControl: 6, bootServers: 8, bootMenu: 9, menuPrompt: 10 } as const;

export interface PxeVendorOptions {
  /** Bit field: 1 no broadcast discovery, 2 no multicast discovery, 4 only listed servers, 8 use the boot file. */
  discoveryControl?: number;
  /** Boot server type (0 = PXE bootstrap server, 0x8000+ vendor) and its addresses. */
  bootServers?: { type: number; addresses: string[] }[];
  /** Menu entries: boot server type and the text shown. */
  menu?: { type: number; description: string }[];
  /** Seconds before the first menu entry is taken (0 at once, 255 wait for a key) and the prompt shown. */
  prompt?: { timeout: number; text: string };
}

function short(value: Buffer, what: string): Buffer {
  if (value.length > 255) throw new RangeError(`PXE ${what}: ${value.length} bytes exceed one sub-option`);
  return value;
}

function counted(bytes: Buffer, what: string): Buffer {
  if (bytes.length > 255) throw new RangeError(`PXE ${what}: ${bytes.length} bytes exceed a length octet`);
  return Buffer.concat([Buffer.of(bytes.length), bytes]);
}

/** Option 43 value. PXE clients do not join split sub-options, so one over 255 bytes throws RangeError. */
export function pxeVendorValue(options: PxeVendorOptions): Buffer {
  const entries: [number, Buffer][] = [];
  if (options.discoveryControl !== undefined) {
    entries.push([PxeSubOption.discoveryControl, u8(options.discoveryControl)]);
  }
  if (options.bootServers) {
    const servers = options.bootServers.map((server) => {
      if (server.addresses.length > 255) throw new RangeError('PXE boot servers: more than 255 addresses');
      return Buffer.concat([
        u16Value(server.type),
        Buffer.of(server.addresses.length),
        ...server.addresses.map(ipValue),
      ]);
    });
    entries.push([PxeSubOption.bootServers, short(Buffer.concat(servers), 'boot servers')]);
  }
  if (options.menu) {
    const items = options.menu.map((item) =>
      Buffer.concat([u16Value(item.type), counted(latin1Value(item.description, 'menu'), 'menu item')]),
    );
    entries.push([PxeSubOption.bootMenu, short(Buffer.concat(items), 'boot menu')]);
  }
  if (options.prompt) {
    const text = latin1Value(options.prompt.text, 'prompt');
    entries.push([PxeSubOption.menuPrompt, short(Buffer.concat([u8(options.prompt.timeout), text]), 'prompt')]);
  }
  return Buffer.concat([encodeEncapsulated(entries), Buffer.of(255)]);
}

function u8(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new RangeError(`PXE: ${n} is not an octet`);
  return Buffer.of(n);
}

function parseServers(value: Buffer): { type: number; addresses: string[] }[] | undefined {
  const servers: { type: number; addresses: string[] }[] = [];
  let at = 0;
  while (at < value.length) {
    const count = value[at + 2];
    if (count === undefined || at + 3 + 4 * count > value.length) return undefined;
    const addresses = Array.from({ length: count }, (_, i) => formatIpv4(value, at + 3 + 4 * i));
    servers.push({ type: value.readUInt16BE(at), addresses });
    at += 3 + 4 * count;
  }
  return servers;
}

function parseMenu(value: Buffer): { type: number; description: string }[] | undefined {
  const menu: { type: number; description: string }[] = [];
  let at = 0;
  while (at < value.length) {
    const length = value[at + 2];
    if (length === undefined || at + 3 + length > value.length) return undefined;
    menu.push({ type: value.readUInt16BE(at), description: value.toString('latin1', at + 3, at + 3 + length) });
    at += 3 + length;
  }
  return menu;
}

/**
 * Reads the sub-options above from an option 43 value; others (multicast TFTP 1-5, 7, boot item 71, ...) are
 * ignored. Undefined when the list or one of these sub-options is malformed.
 */
export function parsePxeVendor(value: Buffer): PxeVendorOptions | undefined {
  const entries = decodeEncapsulated(value);
  if (!entries) return undefined;
  const result: PxeVendorOptions = {};
  const control = entries.get(PxeSubOption.discoveryControl);
  if (control) {
    if (control.length !== 1) return undefined;
    result.discoveryControl = control[0] ?? 0;
  }
  const servers = entries.get(PxeSubOption.bootServers);
  if (servers) {
    const parsed = parseServers(servers);
    if (!parsed) return undefined;
    result.bootServers = parsed;
  }
  const menu = entries.get(PxeSubOption.bootMenu);
  if (menu) {
    const parsed = parseMenu(menu);
    if (!parsed) return undefined;
    result.menu = parsed;
  }
  const prompt = entries.get(PxeSubOption.menuPrompt);
  if (prompt) {
    if (prompt.length < 1) return undefined;
    result.prompt = { timeout: prompt[0] ?? 0, text: prompt.toString('latin1', 1) };
  }
  return result;
}
