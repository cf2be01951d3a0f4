import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function tokenPath(dataDir: string): string {
  return join(dataDir, 'api-token');
}

/**
 * The API's bearer token: made on first use (32 random bytes, base64url) and kept 0600 in the data directory.
 * A token file others can read is tightened rather than trusted as is.
 */
export function ensureToken(dataDir: string): { token: string; created: boolean; tightened: boolean } {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = tokenPath(dataDir);
  try {
    const token = readFileSync(path, 'utf8').trim();
    if (token.length >= 16) {
      const loose = (statSync(path).mode & 0o077) !== 0;
      if (loose) chmodSync(path, 0o600);
      return { token, created: false, tightened: loose };
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const token = randomBytes(32).toString('base64url');
  writeFileSync(path, token + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  return { token, created: true, tightened: false };
}
