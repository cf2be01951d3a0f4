/**
 * Escaping shared by the answer-file renderers (preseed.ts, kickstart.ts, autoinstall.ts) and operator templates
 * (template.ts). Every value that reaches an answer file or a script goes through one of these:
 *
 * - `shQuote`: one POSIX shell word. Kickstart command lines are split with Python's shlex (pykickstart), which
 *   follows the same quoting rules, so kickstart uses it for command options too.
 * - `lineValue` / `debconfValue`: line-oriented formats (preseed, kickstart) cannot carry a line break inside a
 *   value: a newline in a hostname would start a new debconf question or a new kickstart command (or a `%end`).
 *   Such values are refused, never rewritten: an answer file that silently installs something other than what was
 *   asked is worse than an error the operator sees.
 * - `yamlQuote` / `toYaml`: every YAML string is double-quoted with JSON escapes, so nothing is ever read back as a
 *   number, a boolean (YAML 1.1 `on`/`no`, which cloud-init's PyYAML still honours), a date, an alias, a comment or
 *   a nested structure. Any string round-trips, newlines included.
 *
 * Some values cannot be escaped at all because they are syntax in the consumer (a user name in sudoers, a package
 * name that apt-get would read as an option, a disk in a comma-separated drive list): `refuse*` checks those
 * against what the installers themselves accept and throws `UnsafeValueError` otherwise. The shared zod schemas
 * already restrict them; the renderers do not rely on that.
 */

/** A value that cannot be written safely into the answer file being rendered. */
export class UnsafeValueError extends Error {
  readonly what: string;
  readonly value: string;

  constructor(what: string, value: string, why: string) {
    super(`${what} ${JSON.stringify(value)} cannot go into an answer file: ${why}`);
    this.name = 'UnsafeValueError';
    this.what = what;
    this.value = value;
  }
}

/** Characters that never need quoting in a POSIX shell word (and are not special to shlex either). */
const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One shell word that the shell (dash, bash, busybox ash) and Python's shlex read back as exactly `value`. */
export function shQuote(value: string, what = 'value'): string {
  wellFormed(what, value);
  if (value.includes('\0')) throw new UnsafeValueError(what, value, 'a shell word cannot hold a NUL character');
  if (SHELL_SAFE.test(value)) return value;
  // Inside single quotes nothing is special; a single quote itself is closed, escaped and reopened.
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * Characters that end or alter a line for some reader: C0 controls except tab, DEL, C1 controls (U+0085 is NEL),
 * and U+2028/U+2029. Python's str.splitlines(), which pykickstart uses, breaks lines on several of these.
 */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const LINE_BREAKING = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/u;

/** A value that must stay on the line it is written on. */
export function lineValue(what: string, value: string): string {
  wellFormed(what, value);
  if (LINE_BREAKING.test(value)) {
    throw new UnsafeValueError(what, value, 'line breaks and control characters are refused in this format');
  }
  return value;
}

/**
 * A debconf value: debconf-set-selections takes everything after the type up to the end of the line, and joins a
 * line that ends in a backslash with the next one, so a trailing backslash would swallow the next question.
 */
export function debconfValue(what: string, value: string): string {
  lineValue(what, value);
  if (value.endsWith('\\')) {
    throw new UnsafeValueError(what, value, 'a trailing backslash continues a preseed line onto the next one');
  }
  return value;
}

function wellFormed(what: string, value: string): void {
  if (!value.isWellFormed()) throw new UnsafeValueError(what, value, 'it is not well-formed Unicode');
}

/** Characters JSON leaves raw that YAML 1.1 (PyYAML) would fold, refuse or read as a line break. */
const YAML_EXTRA = /[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/gu;

/** A double-quoted YAML scalar (JSON-compatible escapes), read back by any YAML 1.1 or 1.2 parser as `value`. */
export function yamlQuote(value: string, what = 'value'): string {
  wellFormed(what, value);
  return JSON.stringify(value).replace(YAML_EXTRA, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export type YamlValue = string | number | boolean | null | readonly YamlValue[] | YamlMap;
export interface YamlMap {
  readonly [key: string]: YamlValue | undefined;
}

/**
 * Block-style YAML for a document of maps, lists and scalars: strings always double-quoted, keys plain when they
 * are simple identifiers, undefined map entries left out, a list inside a list written as a flow sequence
 * (`- ["curl", "-X", "POST", "..."]`, the shape of an autoinstall command). Deterministic, so goldens are stable.
 */
export function toYaml(document: YamlMap): string {
  return `${mapLines(document, '').join('\n')}\n`;
}

function mapLines(map: YamlMap, indent: string): string[] {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(map)) {
    if (value === undefined) continue;
    const head = `${indent}${yamlKey(key)}:`;
    if (isList(value) && value.length > 0) {
      lines.push(head, ...listLines(value, `${indent}  `));
    } else if (isMap(value) && Object.values(value).some((v) => v !== undefined)) {
      lines.push(head, ...mapLines(value, `${indent}  `));
    } else {
      lines.push(`${head} ${inline(value)}`);
    }
  }
  return lines;
}

function listLines(list: readonly YamlValue[], indent: string): string[] {
  const lines: string[] = [];
  for (const item of list) {
    if (isMap(item) && Object.values(item).some((v) => v !== undefined)) {
      // The first key goes on the dash line, the others line up under it.
      const [first = '', ...rest] = mapLines(item, `${indent}  `);
      lines.push(`${indent}- ${first.trimStart()}`, ...rest);
    } else {
      lines.push(`${indent}- ${inline(item)}`);
    }
  }
  return lines;
}

/** A scalar, or an empty/flow collection, on one line. */
function inline(value: YamlValue): string {
  if (typeof value === 'string') return yamlQuote(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`YAML numbers are integers here, got ${value}`);
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value === null) return 'null';
  if (isList(value)) return `[${value.map(inline).join(', ')}]`;
  if (Object.values(value).every((v) => v === undefined)) return '{}';
  throw new Error('a map inside a list inside a list has no one-line YAML form here');
}

/** Plain when it is a simple identifier that no YAML 1.1 reader takes for a boolean or null (`on:`, `no:`). */
function yamlKey(key: string): string {
  const plain = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) && !/^(y|yes|n|no|true|false|on|off|null)$/i.test(key);
  return plain ? key : yamlQuote(key);
}

function isList(value: YamlValue): value is readonly YamlValue[] {
  return Array.isArray(value);
}

function isMap(value: YamlValue): value is YamlMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---- Values that are syntax to their consumer: checked, never escaped ---------------------------------------------

/** A login name as useradd, d-i user-setup, anaconda and subiquity all accept it (and sudoers reads it as one). */
export function refuseUser(value: string): string {
  return refuse('user', value, /^[a-z_][a-z0-9_-]{0,31}$/, 'a user name is lower-case letters, digits, _ and -');
}

/** apt and dnf package (or @group, name=version, task^) names: never starting with `-`, which is an option. */
export function refusePackage(value: string): string {
  return refuse(
    'package',
    value,
    /^[A-Za-z0-9@][A-Za-z0-9@._+:~^=-]*$/,
    'a package name starts with a letter, digit or @ and has no spaces or shell characters',
  );
}

/** A block device path; it lands in comma-separated drive lists and partman's device questions. */
export function refuseDisk(value: string): string {
  refuse('disk', value, /^\/dev(\/[A-Za-z0-9_.:+-]+)+$/, 'a disk is a path under /dev');
  if (value.split('/').some((part) => part === '.' || part === '..')) {
    throw new UnsafeValueError('disk', value, 'a disk is a path under /dev, without . or ..');
  }
  return value;
}

export function refuseIpv4(what: string, value: string): string {
  const octet = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
  return refuse(what, value, new RegExp(`^${octet}(\\.${octet}){3}$`, 'u'), 'not a dotted-quad IPv4 address');
}

export function refuseMac(value: string): string {
  return refuse('mac', value, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'not a canonical MAC address (aa:bb:cc:dd:ee:ff)');
}

/** An NTP server: a host name or an address, never something an NTP client could read as an option. */
export function refuseHost(what: string, value: string): string {
  return refuse(what, value, /^[A-Za-z0-9][A-Za-z0-9.:-]*$/, 'not a host name or IP address');
}

export function refusePrefix(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 32) {
    throw new UnsafeValueError('network.prefix', String(value), 'not a prefix length from 0 to 32');
  }
  return value;
}

function refuse(what: string, value: string, pattern: RegExp, why: string): string {
  if (!pattern.test(value)) throw new UnsafeValueError(what, value, why);
  return value;
}

/** An http(s) URL, parsed; anything else (or something that does not parse) is refused. */
export function refuseUrl(what: string, value: string): URL {
  lineValue(what, value);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UnsafeValueError(what, value, 'not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UnsafeValueError(what, value, 'only http and https URLs are used');
  }
  return url;
}
