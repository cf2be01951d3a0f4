import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export interface Payload {
  name: string;
  path: string;
  bytes: number;
  sha256: string;
}

/**
 * A file of `bytes` random bytes in `dir`, made once and reused (its hash is kept beside it in NAME.sha256). The
 * directory and file are world-readable: tftpd-hpa and atftpd serve as `nobody`.
 */
export function ensureRandomFile(dir: string, name: string, bytes: number): Payload {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  const path = join(dir, name);
  const sidecar = `${path}.sha256`;
  if (existsSync(path) && existsSync(sidecar) && statSync(path).size === bytes) {
    const [sha256, size] = readFileSync(sidecar, 'utf8').trim().split(' ');
    if (sha256 && Number(size) === bytes) return { name, path, bytes, sha256 };
  }
  const temp = `${path}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w', 0o644);
  const hash = createHash('sha256');
  try {
    const chunk = 1 << 20;
    for (let done = 0; done < bytes; done += chunk) {
      const block = randomBytes(Math.min(chunk, bytes - done));
      hash.update(block);
      writeSync(fd, block);
    }
  } finally {
    closeSync(fd);
  }
  chmodSync(temp, 0o644);
  renameSync(temp, path);
  const sha256 = hash.digest('hex');
  writeFileSync(sidecar, `${sha256} ${bytes}\n`);
  return { name, path, bytes, sha256 };
}
