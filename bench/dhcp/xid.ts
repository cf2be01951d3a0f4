/**
 * The generator's transaction ids: one per client, spread over all 32 bits from the first client on, as real
 * clients' random xids are (RFC 2131 §4.4.1: "a random number"), and mapped back to the client with no table.
 *
 * Why not salt + i: a run whose salt happens to be below 2^30 sends only xids that V8 holds as small integers; when
 * the next run's are not, the daemon's decoded packets change shape and its whole DHCP path is deoptimised and
 * compiled again in the middle of that run (`--trace-deopt`: readHeader "not a Smi", then "wrong map" in decode,
 * clientFacts, decide, encode; 177 ms of TurboFan on the daemon's CPU ~1 s into a measured run). A daemon serving
 * real clients meets both kinds within its first packets; the warm-up must too.
 *
 * xid = i × K + salt (mod 2^32) with K odd is a bijection; i = (xid − salt) × K⁻¹ (mod 2^32).
 */
const K = 0x9e3779b1;

/** K⁻¹ mod 2^32 by Newton's iteration (each step doubles the correct low bits: 3 → 6 → 12 → 24 → 48). */
function inverse(k: number): number {
  let x = k; // k·k ≡ 1 (mod 8) for odd k: 3 correct bits
  for (let step = 0; step < 4; step++) x = Math.imul(x, 2 - Math.imul(k, x));
  return x >>> 0;
}

const K_INVERSE = inverse(K);

export interface Xids {
  /** The xid of client i. */
  of(i: number): number;
  /** The client whose xid this is (any 32-bit value maps to some index; the caller checks its range). */
  client(xid: number): number;
}

export function xidsFor(salt: number): Xids {
  return {
    of: (i) => (Math.imul(i, K) + salt) >>> 0,
    client: (xid) => Math.imul((xid - salt) >>> 0, K_INVERSE) >>> 0,
  };
}
