/**
 * Reading each server's lease store after a run, to check that every client the generator saw ACKed has its
 * lease there ("zero lost leases"): Kea's memfile CSV, dnsmasq's lease file, smeltd's API or its SQLite store.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { Netns } from '../lib/netns.ts';
import { run } from '../lib/process.ts';

export interface LeaseReading {
  /** MAC (lower case, colons) → address, for every active lease. */
  byMac: Map<string, string>;
  /** How the store was read, for the report. */
  source: string;
  /** Why it could not be read (byMac is then empty). */
  error?: string;
}

/** One ACKed client: MAC and the address in its ACK. */
export type Acked = [mac: string, address: string];

export function readAcked(path: string): Acked[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((line) => line.trim().split(' '))
    .filter((parts): parts is Acked => parts.length === 2);
}

/**
 * Kea memfile (lease4 CSV, header line first). The file is a journal: a later row for an address replaces the
 * earlier one; valid_lifetime 0 removes it; state 0 is an active lease (1 declined, 2 expired-reclaimed).
 */
export function readKeaLeases(path: string): LeaseReading {
  const source = `Kea's memfile (DIR/${basename(path)})`;
  if (!existsSync(path)) return { byMac: new Map(), source, error: `${path} does not exist` };
  const [header, ...rows] = readFileSync(path, 'utf8').split('\n');
  const columns = (header ?? '').split(',');
  const col = (name: string) => columns.indexOf(name);
  const [iAddress, iMac, iLifetime, iState] = [col('address'), col('hwaddr'), col('valid_lifetime'), col('state')];
  if (iAddress < 0 || iMac < 0) return { byMac: new Map(), source, error: `unexpected header: ${header ?? ''}` };
  const byAddress = new Map<string, { mac: string; active: boolean }>();
  for (const row of rows) {
    if (row.trim() === '') continue;
    const fields = row.split(',');
    const address = fields[iAddress] ?? '';
    const lifetime = Number(fields[iLifetime] ?? '1');
    const state = Number(fields[iState] ?? '0');
    byAddress.set(address, { mac: (fields[iMac] ?? '').toLowerCase(), active: lifetime > 0 && state === 0 });
  }
  const byMac = new Map<string, string>();
  for (const [address, { mac, active }] of byAddress) if (active) byMac.set(mac, address);
  return { byMac, source };
}

/** dnsmasq's lease file: `EXPIRY MAC ADDRESS HOSTNAME CLIENT-ID` per lease (a `duid` line only with DHCPv6). */
export function readDnsmasqLeases(path: string): LeaseReading {
  const source = `dnsmasq's lease file (DIR/${basename(path)})`;
  if (!existsSync(path)) return { byMac: new Map(), source, error: `${path} does not exist` };
  const byMac = new Map<string, string>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [expiry, mac, address] = line.trim().split(/\s+/);
    if (expiry === undefined || mac === undefined || address === undefined || !/^\d+$/.test(expiry)) continue;
    byMac.set(mac.toLowerCase(), address);
  }
  return { byMac, source };
}

interface LeasePage {
  items: { address: string; mac: string; state: string }[];
  next: string | null;
}

/**
 * smeltd: `GET /api/v1/leases` (paged, bearer token from dataDir/api-token) with curl inside the server namespace,
 * where the API listens on loopback; when the route does not exist (404) or the API does not answer, the SQLite
 * store itself (dataDir/smelt.db, collection "leases", read-only). Bound leases only.
 */
export async function readSmeltdLeases(ns: Netns, dataDir: string, api: string): Promise<LeaseReading> {
  const viaApi = await readSmeltdApi(ns, dataDir, api);
  if (viaApi) return viaApi;
  return readSmeltdSqlite(dataDir);
}

async function readSmeltdApi(ns: Netns, dataDir: string, api: string): Promise<LeaseReading | undefined> {
  const tokenPath = join(dataDir, 'api-token');
  if (!existsSync(tokenPath)) return undefined;
  const token = readFileSync(tokenPath, 'utf8').trim();
  const byMac = new Map<string, string>();
  let cursor: string | null = null;
  for (let page = 0; page < 10_000; page++) {
    const url = `http://${api}/api/v1/leases?limit=1000${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const result = await run(
      'ip',
      ['netns', 'exec', ns.name, 'curl', '-sS', '-H', `Authorization: Bearer ${token}`, '-w', '\n%{http_code}', url],
      { timeoutMs: 30_000 },
    );
    const body = result.stdout.slice(0, result.stdout.lastIndexOf('\n'));
    const status = result.stdout.slice(result.stdout.lastIndexOf('\n') + 1).trim();
    if (result.code !== 0 || status !== '200') return undefined;
    let parsed: LeasePage;
    try {
      parsed = JSON.parse(body) as LeasePage;
    } catch {
      return undefined;
    }
    for (const lease of parsed.items) if (lease.state === 'bound') byMac.set(lease.mac.toLowerCase(), lease.address);
    cursor = parsed.next;
    if (cursor === null) break;
  }
  return { byMac, source: `smeltd's API, GET /api/v1/leases (paged)` };
}

export function readSmeltdSqlite(dataDir: string): LeaseReading {
  const path = join(dataDir, 'smelt.db');
  const source = `smeltd's SQLite store (DIR/data/smelt.db, collection "leases"; the API has no /api/v1/leases yet)`;
  if (!existsSync(path)) return { byMac: new Map(), source, error: `${path} does not exist` };
  const byMac = new Map<string, string>();
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { readOnly: true });
    const rows = db.prepare("SELECT value FROM kv WHERE collection = 'leases'").all() as { value: string }[];
    for (const row of rows) {
      const lease = JSON.parse(row.value) as { address?: string; mac?: string; state?: string };
      if (lease.state === 'bound' && lease.mac !== undefined && lease.address !== undefined)
        byMac.set(lease.mac.toLowerCase(), lease.address);
    }
  } catch (error) {
    return { byMac, source, error: error instanceof Error ? error.message : String(error) };
  } finally {
    db?.close();
  }
  return { byMac, source };
}

export interface LeaseCheck {
  acked: number;
  /** ACKed clients with no lease in the store / with a lease for another address. */
  missing: number;
  wrongAddress: number;
  /** Leases in the store in all (the warm-up's included). */
  stored: number;
  examples: string[];
}

export function compareLeases(acked: readonly Acked[], store: LeaseReading): LeaseCheck {
  const check: LeaseCheck = {
    acked: acked.length,
    missing: 0,
    wrongAddress: 0,
    stored: store.byMac.size,
    examples: [],
  };
  for (const [mac, address] of acked) {
    const stored = store.byMac.get(mac);
    if (stored === address) continue;
    if (stored === undefined) check.missing++;
    else check.wrongAddress++;
    if (check.examples.length < 3) check.examples.push(`${mac} ACKed ${address}, store: ${stored ?? 'none'}`);
  }
  return check;
}
