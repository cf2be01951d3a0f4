/**
 * A packet's options, code → value, in insertion order: what the codec and the modes need of a Map<number, Buffer>,
 * so a Map is one too (tests build packets with one). Pure.
 */
export interface DhcpOptions extends Iterable<[number, Buffer]> {
  readonly size: number;
  get(code: number): Buffer | undefined;
  has(code: number): boolean;
  /** Replaces the value of a code already present in place (its position is kept), else appends. */
  set(code: number, value: Buffer): this;
  delete(code: number): boolean;
  keys(): Iterable<number>;
}

/**
 * The codec's DhcpOptions: two parallel arrays searched linearly. A packet has a dozen or two options, and a DHCP
 * server makes four option tables per lease (two requests decoded, two replies built): a Map's hash table, grown
 * from 4 to 8 to 16 entries on the way, allocates about twice what two arrays do, and every allocation brings the
 * next young-generation collection closer (BENCHMARKS.md, DHCP: the collections of a 50,000-client storm).
 */
export class OptionList implements DhcpOptions {
  readonly #codes: number[] = [];
  readonly #values: Buffer[] = [];

  get size(): number {
    return this.#codes.length;
  }

  get(code: number): Buffer | undefined {
    const at = this.#codes.indexOf(code);
    return at < 0 ? undefined : this.#values[at];
  }

  has(code: number): boolean {
    return this.#codes.includes(code);
  }

  set(code: number, value: Buffer): this {
    const at = this.#codes.indexOf(code);
    if (at < 0) {
      this.#codes.push(code);
      this.#values.push(value);
    } else this.#values[at] = value;
    return this;
  }

  delete(code: number): boolean {
    const at = this.#codes.indexOf(code);
    if (at < 0) return false;
    this.#codes.splice(at, 1);
    this.#values.splice(at, 1);
    return true;
  }

  keys(): Iterable<number> {
    return this.#codes.values();
  }

  /** Entries as [code, value] pairs, like a Map's (a new array each: only the slow paths iterate them). */
  *[Symbol.iterator](): Iterator<[number, Buffer]> {
    for (let at = 0; at < this.#codes.length; at++) yield [this.#codes[at] ?? 0, this.#values[at] ?? EMPTY];
  }
}

const EMPTY = Buffer.alloc(0);
