/**
 * The maker of a NIC from its MAC address (the Machine's "OUI vendor" fact), from the IEEE registries as Debian's
 * ieee-data package ships them, compacted by scripts/oui-table.ts into oui-table.txt.gz beside this file (its first
 * line says which ieee-data version it came from).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tryParseMac } from '@smelt/shared/mac';

/** The vendor name for a MAC (any spelling tryParseMac accepts), or undefined when unknown or not a MAC. */
export type OuiLookup = (mac: string) => string | undefined;

export const defaultOuiTablePath = new URL('oui-table.txt.gz', import.meta.url).pathname;

const CANONICAL = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/**
 * Reads the table (gzip, `HEX<TAB>Vendor` lines with 6, 7 or 9 hex digits: MA-L 24-bit, MA-M 28-bit, MA-S/IAB 36-bit
 * prefixes; `#` lines are comments) into one map per prefix length. A lookup tries the 36-, then the 28-, then the
 * 24-bit prefix: the longest assignment wins, in constant time. Loading the shipped table (46k prefixes) takes
 * ~30 ms here, 7 of them gunzip. Locally administered addresses (bit 0x02 of the first octet: VMs, containers,
 * randomised Wi-Fi MACs) and group addresses (bit 0x01) name no maker and get undefined, as does anything that is
 * not a MAC.
 */
export function loadOuiTable(path: string = defaultOuiTablePath): OuiLookup {
  const text = gunzipSync(readFileSync(path)).toString('utf8');
  // One map per prefix length, indexed by the prefix's value; filled by one pass over the text that reads each
  // prefix's hex digits itself (no per-line strings other than the name).
  const ma24 = new Map<number, string>();
  const ma28 = new Map<number, string>();
  const ma36 = new Map<number, string>();
  const maps: (Map<number, string> | undefined)[] = [];
  maps[6] = ma24;
  maps[7] = ma28;
  maps[9] = ma36;
  const length = text.length;
  let i = 0;
  while (i < length) {
    let end = text.indexOf('\n', i);
    if (end === -1) end = length;
    let value = 0;
    let digits = 0;
    let j = i;
    for (; j < end; j++) {
      const c = text.charCodeAt(j);
      const digit = c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;
      if (digit < 0) break;
      value = value * 16 + digit;
      digits++;
    }
    // A `#` comment, a blank line or anything else that is not HEX<TAB>name is skipped.
    if (j < end && text.charCodeAt(j) === 9 /* tab */) maps[digits]?.set(value, text.slice(j + 1, end));
    i = end + 1;
  }

  return (input: string) => {
    const mac = CANONICAL.test(input) ? input : tryParseMac(input);
    if (mac === undefined) return undefined;
    const hex = mac.slice(0, 2) + mac.slice(3, 5) + mac.slice(6, 8) + mac.slice(9, 11) + mac.slice(12, 13);
    const first = Number.parseInt(hex.slice(0, 2), 16);
    if ((first & 0x03) !== 0) return undefined; // locally administered or group
    return (
      ma36.get(Number.parseInt(hex, 16)) ??
      ma28.get(Number.parseInt(hex.slice(0, 7), 16)) ??
      ma24.get(Number.parseInt(hex.slice(0, 6), 16))
    );
  };
}
