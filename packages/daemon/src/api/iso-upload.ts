import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'koa';
import { resourceNameSchema } from '@smelt/shared/name';
import { SmeltError } from '../errors.ts';

/**
 * ISO uploads (`smeltctl create boot --upload FILE`): `PUT /api/v1/isos/<name>` with the image as the raw body,
 * its length, and its SHA-256 as `Content-Digest: sha-256=:<base64>:` (RFC 9530). The body is streamed to a
 * temporary file in dataDir/isos (never held in memory), hashed on the way, and only when the length and the
 * digest both match is it synced and renamed into place: an interrupted or corrupted upload leaves nothing
 * behind and nothing registered. `GET /api/v1/isos` lists them, `DELETE /api/v1/isos/<name>` removes one.
 */
export interface IsoStore {
  dir: string;
  /** Handles the request if it is an ISO upload route; false to let the router go on. */
  handle(ctx: Context): Promise<boolean>;
}

const ROUTE = /^\/api\/v1\/isos\/([^/]+)$/;
/** Room left free beside an upload, so the store's own writes never hit a full disk. */
const HEADROOM = 256 * 1024 * 1024;

export function createIsoStore(dataDir: string): IsoStore {
  const dir = join(dataDir, 'isos');

  function nameOf(ctx: Context): string | undefined {
    const match = ROUTE.exec(ctx.path);
    if (!match?.[1]) return undefined;
    const parsed = resourceNameSchema.safeParse(decodeURIComponent(match[1]));
    if (!parsed.success) {
      throw new SmeltError('invalid_request', `params.name: ${parsed.error.issues[0]?.message ?? 'not a name'}`, [
        { in: 'params', path: 'name', message: parsed.error.issues[0]?.message ?? 'not a name' },
      ]);
    }
    return parsed.data;
  }

  async function upload(ctx: Context, name: string): Promise<void> {
    const length = Number(ctx.get('content-length'));
    if (!ctx.get('content-length') || !Number.isSafeInteger(length) || length <= 0) {
      throw new SmeltError('invalid_request', 'send the ISO with a Content-Length', [
        { in: 'header', path: 'content-length', message: 'required' },
      ]);
    }
    const digest = /^sha-256=:([A-Za-z0-9+/]{43}=):$/.exec(ctx.get('content-digest').trim())?.[1];
    if (!digest) {
      throw new SmeltError('invalid_request', 'send the SHA-256 as Content-Digest: sha-256=:<base64>: (RFC 9530)', [
        { in: 'header', path: 'content-digest', message: 'required: sha-256=:<base64>:' },
      ]);
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const target = join(dir, `${name}.iso`);
    if (await exists(target)) throw new SmeltError('conflict', `an ISO named "${name}" was already uploaded`);
    const fs = await statfs(dir);
    const free = fs.bavail * fs.bsize;
    if (free < length + HEADROOM) {
      throw new SmeltError(
        'insufficient_storage',
        `the daemon's data directory has ${mib(free)} free; this ISO needs ${mib(length)} and ${mib(HEADROOM)} to spare`,
      );
    }
    const partial = join(dir, `.${name}.${randomBytes(6).toString('hex')}.partial`);
    const hash = createHash('sha256');
    let received = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        received += chunk.length;
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(ctx.req, tap, createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
      if (received !== length) {
        throw new SmeltError(
          'invalid_request',
          `the upload ended after ${String(received)} of ${String(length)} bytes`,
        );
      }
      const actual = hash.digest('base64');
      if (actual !== digest) {
        throw new SmeltError('invalid_request', `the ISO arrived corrupted: SHA-256 ${actual}, expected ${digest}`);
      }
      const handle = await open(partial, 'r');
      await handle.sync();
      await handle.close();
      if (await exists(target)) throw new SmeltError('conflict', `an ISO named "${name}" was uploaded meanwhile`);
      await rename(partial, target);
      const dirHandle = await open(dir, 'r');
      await dirHandle.sync();
      await dirHandle.close();
    } catch (error) {
      await unlink(partial).catch(() => undefined);
      throw error;
    }
    ctx.status = 201;
    ctx.body = { name, path: target, size: length, sha256: Buffer.from(digest, 'base64').toString('hex') };
  }

  async function list(ctx: Context): Promise<void> {
    const names = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.iso')).sort();
    const items = [];
    for (const file of names) {
      const info = await stat(join(dir, file));
      items.push({
        name: file.slice(0, -4),
        path: join(dir, file),
        size: info.size,
        uploadedAt: info.mtime.toISOString(),
      });
    }
    ctx.body = { items, next: null };
  }

  async function remove(ctx: Context, name: string): Promise<void> {
    try {
      await unlink(join(dir, `${name}.iso`));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new SmeltError('not_found', `no uploaded ISO "${name}"`);
      throw error;
    }
    ctx.status = 204;
  }

  return {
    dir,
    async handle(ctx) {
      if (ctx.path === '/api/v1/isos' && ctx.method === 'GET') {
        await list(ctx);
        return true;
      }
      const name = nameOf(ctx);
      if (name === undefined) return false;
      if (ctx.method === 'PUT') await upload(ctx, name);
      else if (ctx.method === 'DELETE') await remove(ctx, name);
      else {
        ctx.set('Allow', 'PUT, DELETE');
        throw new SmeltError('method_not_allowed', `${ctx.method} is not allowed on ${ctx.path}; allowed: PUT, DELETE`);
      }
      return true;
    },
  };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}
