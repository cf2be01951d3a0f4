import { z } from 'zod';

/** A MAC address in canonical form: six lower-case hex octets separated by colons. */
export type Mac = string;

const HEX12 = /^[0-9a-f]{12}$/;
// Each accepted spelling, reduced to its 12 hex digits. Anything else is rejected rather than guessed at.
const SPELLINGS: readonly RegExp[] = [
  /^([0-9a-f]{2})[:]([0-9a-f]{2})[:]([0-9a-f]{2})[:]([0-9a-f]{2})[:]([0-9a-f]{2})[:]([0-9a-f]{2})$/, // aa:bb:cc:dd:ee:ff
  /^([0-9a-f]{2})-([0-9a-f]{2})-([0-9a-f]{2})-([0-9a-f]{2})-([0-9a-f]{2})-([0-9a-f]{2})$/, // aa-bb-cc-dd-ee-ff
  /^([0-9a-f]{4})\.([0-9a-f]{4})\.([0-9a-f]{4})$/, // aabb.ccdd.eeff (Cisco)
  /^([0-9a-f]{12})$/, // aabbccddeeff
];

export class InvalidMacError extends Error {
  readonly input: string;
  constructor(input: string) {
    super(`"${input}" is not a MAC address: use aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or aabbccddeeff`);
    this.name = 'InvalidMacError';
    this.input = input;
  }
}

/** Returns the canonical form of `input`, or undefined when it is not a MAC in an accepted spelling. */
export function tryParseMac(input: string): Mac | undefined {
  const lower = input.trim().toLowerCase();
  for (const spelling of SPELLINGS) {
    const match = spelling.exec(lower);
    if (match) {
      const hex = match.slice(1).join('');
      if (!HEX12.test(hex)) return undefined;
      return hex.replace(/(..)(?!$)/g, '$1:');
    }
  }
  return undefined;
}

/** Canonicalises a MAC address; throws InvalidMacError quoting the input when it is not one. */
export function parseMac(input: string): Mac {
  const mac = tryParseMac(input);
  if (mac === undefined) throw new InvalidMacError(input);
  return mac;
}

/** Accepts every spelling tryParseMac accepts and yields the canonical form. */
export const macSchema = z.string().transform((input, ctx): Mac => {
  const mac = tryParseMac(input);
  if (mac === undefined) {
    ctx.addIssue({ code: 'custom', message: new InvalidMacError(input).message });
    return z.NEVER;
  }
  return mac;
});

/** The dash form used in PXELINUX file names and URLs: aa-bb-cc-dd-ee-ff. */
export function macToDashes(mac: Mac): string {
  return mac.replaceAll(':', '-');
}
