/**
 * Generates packages/daemon/src/discovery/oui-table.txt.gz, the compact IEEE vendor table smeltd uses to name the
 * maker of a machine's NIC (packages/daemon/src/discovery/oui.ts reads it).
 *
 * Run by hand when Debian's `ieee-data` package is updated, then commit the table:
 *
 *     apt-get install ieee-data        # /usr/share/ieee-data/{oui,mam,oui36,iab}.csv
 *     node scripts/oui-table.ts        # [--source DIR] [--out FILE]
 *
 * Input: the IEEE registries as ieee-data ships them — MA-L (oui.csv, 24-bit prefixes), MA-M (mam.csv, 28-bit),
 * MA-S (oui36.csv, 36-bit) and the retired IAB (iab.csv, 36-bit). Output: gzip of UTF-8 text, one line per
 * assignment, sorted by prefix:
 *
 *     # smelt OUI table: ieee-data 20220827.1 ... (first line: where it came from)
 *     3CECEF<TAB>Super Micro Computer
 *     70B3D5F2F<TAB>TELEPLATFORMS
 *
 * The prefix is 6, 7 or 9 upper-case hex digits (24, 28 or 36 bits); the lookup takes the longest that matches.
 * Vendor names are shortened: whitespace collapsed, trailing legal forms dropped ("Dell Inc." → "Dell", "VMware,
 * Inc." → "VMware", "HUAWEI TECHNOLOGIES CO.,LTD" → "HUAWEI TECHNOLOGIES"); case is kept. Left out: "Private"
 * assignments (no name to show) and the MA-L blocks the IEEE keeps for itself to carve into MA-M/MA-S/IAB ("IEEE
 * Registration Authority"), so an address in such a block that has no sub-assignment finds no vendor rather than the
 * registry's name. A prefix listed twice (a handful of very old MA-L entries) keeps its first listing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';

const { values } = parseArgs({
  options: {
    source: { type: 'string', default: '/usr/share/ieee-data' },
    out: {
      type: 'string',
      default: new URL('../packages/daemon/src/discovery/oui-table.txt.gz', import.meta.url).pathname,
    },
  },
});
const source = values.source;

/** The registries, in the order their entries are taken (the first listing of a prefix wins). */
const registries = [
  { file: 'oui.csv', registry: 'MA-L', digits: 6 },
  { file: 'mam.csv', registry: 'MA-M', digits: 7 },
  { file: 'oui36.csv', registry: 'MA-S', digits: 9 },
  { file: 'iab.csv', registry: 'IAB', digits: 9 },
] as const;

/** RFC 4180 fields: commas inside double quotes, "" for a quote inside them, CRLF or LF line ends. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  return rows;
}

// Trailing legal forms, dropped one at a time from the end ("Foo Co., Ltd." → "Foo Co." → "Foo").
const legalForm =
  /[\s,]+(?:inc|incorporated|corp|corporation|co|ltd|limited|llc|l\.l\.c|gmbh|mbh|ag|kg|s\.?a|s\.?l|b\.?v|n\.?v|oy|ab|a\/s|as|asa|s\.?p\.?a|s\.?r\.?l|sas|k\.?k|plc|pte|pty|sdn\.?\s*bhd|bhd|lda|ltda|srl|spa|sa\s+de\s+cv|s\.?a\.?s|ou|aps|a\.?s|s\.?r\.?o|sp\.?\s*z\s*o\.?\s*o|zrt|kft|e\.?v)\.?$/i;
// "Co.,Ltd" and "Co.,Ltd." written without a space after the comma.
const glued = /[\s,]+co\.?,\s*ltd\.?$/i;

function shortName(name: string): string {
  let short = name.replace(/\s+/g, ' ').trim();
  for (;;) {
    const next = short
      .replace(glued, '')
      .replace(legalForm, '')
      .replace(/[\s,&]+$/, '');
    if (next === short || next.length < 2) break;
    short = next;
  }
  return short;
}

function ieeeDataVersion(): string {
  let version = 'unknown version';
  try {
    version = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'ieee-data'], { encoding: 'utf8' }).trim();
  } catch {
    // not Debian, or not from the package
  }
  const stamp = join(source, '.lastupdate');
  const when = existsSync(stamp) ? Number(readFileSync(stamp, 'utf8').trim()) : Number.NaN;
  const date = Number.isFinite(when) ? new Date(when * 1000).toISOString().slice(0, 10) : 'unknown date';
  return `ieee-data ${version} (registries fetched ${date})`;
}

const entries = new Map<string, string>();
const counts: string[] = [];
for (const { file, registry, digits } of registries) {
  const path = join(source, file);
  if (!existsSync(path)) {
    if (registry === 'MA-L') throw new Error(`${path} is missing: apt-get install ieee-data`);
    counts.push(`${registry} absent`);
    continue;
  }
  let taken = 0;
  for (const [kind, assignment, organisation] of parseCsv(readFileSync(path, 'utf8')).slice(1)) {
    if (kind !== registry || assignment === undefined || organisation === undefined) continue;
    const prefix = assignment.trim().toUpperCase();
    if (prefix.length !== digits || !/^[0-9A-F]+$/.test(prefix)) continue;
    const name = shortName(organisation);
    if (name === '' || /^private$/i.test(name) || /^IEEE Registration Authority$/i.test(name)) continue;
    if (entries.has(prefix)) continue;
    entries.set(prefix, name.replaceAll('\t', ' '));
    taken++;
  }
  counts.push(`${registry} ${taken}`);
}

const lines = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([p, n]) => `${p}\t${n}`);
const header = `# smelt OUI table: ${ieeeDataVersion()}; ${counts.join(', ')}; made by scripts/oui-table.ts`;
const gz = gzipSync(`${header}\n${lines.join('\n')}\n`, { level: 9 });
writeFileSync(values.out, gz);
console.log(`${values.out}: ${lines.length} prefixes, ${(gz.length / 1024).toFixed(0)} KiB\n${header}`);
