/**
 * Joliet: a supplementary volume descriptor whose escape sequences (bytes 88..119) announce UCS-2 level 1, 2 or 3
 * (`%/@`, `%/C`, `%/E`), and a second directory tree whose names are UCS-2 big-endian.
 */

const ESCAPES: Record<string, 1 | 2 | 3> = { '%/@': 1, '%/C': 2, '%/E': 3 };

/** The Joliet level announced by a supplementary descriptor's escape sequences field, if any. */
export function jolietLevel(escapes: Uint8Array): 1 | 2 | 3 | undefined {
  const text = Buffer.from(escapes).toString('latin1');
  for (let at = 0; at + 3 <= text.length; at++) {
    const level = ESCAPES[text.slice(at, at + 3)];
    if (level !== undefined) return level;
  }
  return undefined;
}

/**
 * A Joliet file identifier as a name: UCS-2 big-endian (UTF-16 surrogate pairs pass through, so xorriso's
 * `-joliet-utf16` names decode too), a `;1` version and trailing dots removed (as Linux does). An odd trailing
 * byte is dropped.
 */
export function jolietName(identifier: Uint8Array): string {
  const even = identifier.length - (identifier.length % 2);
  const swapped = Buffer.from(identifier.subarray(0, even)).swap16();
  return stripVersion(swapped.toString('utf16le'));
}

/** Removes a `;<digits>` version suffix and any trailing dots: `VMLINUZ.;1` → `VMLINUZ`. */
export function stripVersion(name: string): string {
  return name.replace(/;\d*$/, '').replace(/\.+$/, '');
}
