/**
 * Where encode() puts each option: the options field, then (option overload) `file`, then `sname`; and which
 * options give way when even that is not enough. Pure; packet.ts writes the result into the message.
 *
 * Rules, in the order they apply:
 *  1. RFC 3396 §5–6: a value longer than 255 octets is split into consecutive instances of the same code, each at
 *     most 255 octets; the client concatenates them in order (options field, then `file`, then `sname`).
 *  2. Everything goes in the options field when it fits (with its END).
 *  3. Otherwise RFC 2132 §9.3 option overload: option 52 is written first in the options field, and the remaining
 *     instances continue, in insertion order, into `file` (value 1) and then `sname` (value 2; 3 = both) — but only
 *     into a field the packet leaves empty (''): a field carrying a boot file name or server name is never
 *     overwritten. RFC 2131 §4.1 gives the same interpretation order. Each overloaded field ends with its own END.
 *     Instances are placed strictly in order, so the decoded map keeps the insertion order and split values their
 *     chunk order; a later small option does not jump back into space an earlier big one left.
 *  4. If it still does not fit, options are dropped whole, the most recently inserted first, sparing
 *     PROTECTED_OPTIONS (message type, server identifier, subnet mask, lease time — what a client cannot do without),
 *     until the rest fits. The codes dropped are reported so the caller can log them.
 *  5. If the protected options alone do not fit, encoding fails with a RangeError: the caller's values are absurd.
 */

/** Never dropped to make room: 53 message type, 54 server identifier, 1 subnet mask, 51 lease time. */
export const PROTECTED_OPTIONS: readonly number[] = [53, 54, 1, 51];

const PAD = 0;
const END = 255;
const OVERLOAD = 52;
/** Option 52 itself: code, length 1, value. */
const OVERLOAD_SIZE = 3;
const FILE_SIZE = 128;
const SNAME_SIZE = 64;

export interface OptionSpace {
  /** Bytes available after the magic cookie, END included. */
  main: number;
  /** May options overflow into `file` / `sname` (the packet leaves them empty)? */
  file: boolean;
  sname: boolean;
}

export interface OptionLayout {
  /** The options field: [option 52], options, END. */
  main: Buffer;
  /** Contents of `file` / `sname` when overloaded (options then END), else undefined. */
  file: Buffer | undefined;
  sname: Buffer | undefined;
  /** Value of option 52 written (1 file, 2 sname, 3 both), 0 when not overloaded. */
  overload: number;
  /** Codes dropped to fit, in the order they were dropped. */
  dropped: number[];
}

/** One option as instances on the wire: code, length, ≤255 octets of value, repeated as RFC 3396 requires. */
export function optionInstances(code: number, value: Uint8Array): Buffer[] {
  if (!Number.isInteger(code) || code <= PAD || code >= END || code === OVERLOAD) {
    throw new RangeError(`option code ${code} cannot be encoded (1-254, and 52 is written by the encoder)`);
  }
  const instances: Buffer[] = [];
  let at = 0;
  do {
    const chunk = value.subarray(at, at + 255);
    const instance = Buffer.allocUnsafe(2 + chunk.length);
    instance[0] = code;
    instance[1] = chunk.length;
    instance.set(chunk, 2);
    instances.push(instance);
    at += 255;
  } while (at < value.length);
  return instances;
}

interface Field {
  capacity: number;
  used: number;
  parts: Buffer[];
}

function field(capacity: number): Field {
  return { capacity, used: 0, parts: [] };
}

function withEnd(parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, Buffer.of(END)]);
}

function tryLayout(instances: Buffer[], space: OptionSpace): Omit<OptionLayout, 'dropped'> | undefined {
  const total = instances.reduce((sum, instance) => sum + instance.length, 0);
  if (total + 1 <= space.main) return { main: withEnd(instances), file: undefined, sname: undefined, overload: 0 };
  // Option 52 and END must fit in the options field for any overload at all.
  if (space.main < OVERLOAD_SIZE + 1) return undefined;
  const main = field(space.main - OVERLOAD_SIZE - 1);
  const file = space.file ? field(FILE_SIZE - 1) : undefined;
  const sname = space.sname ? field(SNAME_SIZE - 1) : undefined;
  const fields = [main, file, sname].filter((f) => f !== undefined);
  if (fields.length === 1) return undefined;
  let index = 0;
  for (const instance of instances) {
    let current = fields[index];
    while (current && current.used + instance.length > current.capacity) current = fields[++index];
    if (!current) return undefined;
    current.parts.push(instance);
    current.used += instance.length;
  }
  const overload = (file?.parts.length ? 1 : 0) | (sname?.parts.length ? 2 : 0);
  return {
    main: withEnd([Buffer.of(OVERLOAD, 1, overload), ...main.parts]),
    file: file?.parts.length ? withEnd(file.parts) : undefined,
    sname: sname?.parts.length ? withEnd(sname.parts) : undefined,
    overload,
  };
}

/** Lays out `options` (insertion order) in `space`; see the rules at the top of this file. */
export function layoutOptions(options: Iterable<[number, Uint8Array]>, space: OptionSpace): OptionLayout {
  const kept = [...options].map(([code, value]) => ({ code, instances: optionInstances(code, value) }));
  const dropped: number[] = [];
  for (;;) {
    const layout = tryLayout(
      kept.flatMap((option) => option.instances),
      space,
    );
    if (layout) return { ...layout, dropped };
    const victim = kept.findLastIndex((option) => !PROTECTED_OPTIONS.includes(option.code));
    if (victim < 0) {
      throw new RangeError(`options ${kept.map((o) => o.code).join(', ')} alone exceed ${space.main} bytes`);
    }
    dropped.push(kept[victim]?.code ?? 0);
    kept.splice(victim, 1);
  }
}
