import { stat } from 'node:fs/promises';
import { bootSchema, type Boot, type BootPatch, type BootSpec, type bootKinds } from '@smelt/shared/boot';
import { applyMergePatch } from '@smelt/shared/patch';
import { fieldErrorsFromZod, type FieldError } from '@smelt/shared/problem';
import { conflict, invalidField, notFound, SmeltError } from '../errors.ts';
import type { IsoCache } from '../iso/cache.ts';
import { IsoError } from '../iso/errors.ts';
import { closestPaths } from '../iso/suggest.ts';
import type { InventoryContext } from './context.ts';
import { paginate } from './page.ts';

const isUrl = (value: string) => /^https?:\/\//.test(value);

type BootFiles = Pick<BootSpec, 'kernel' | 'initrd' | 'isoPath'>;

function bootFiles(boot: BootFiles): [string, string][] {
  return [
    ...(boot.kernel === undefined ? [] : [['kernel', boot.kernel] as [string, string]]),
    ...boot.initrd.map((file, i): [string, string] => [`initrd.${i}`, file]),
  ];
}

/** Every kernel and initrd path inside the ISO must exist there; a miss names the closest paths that do. */
async function checkIsoFiles(isos: IsoCache, isoPath: string, files: [string, string][]): Promise<void> {
  const problems: FieldError[] = [];
  const image = await stat(isoPath).catch(() => undefined);
  if (!image?.isFile()) throw invalidField('body', 'isoPath', `no such file on the daemon's host: ${isoPath}`);
  try {
    await isos.with(isoPath, (iso) => {
      for (const [path, file] of files) {
        if (isUrl(file)) continue;
        if (iso.lookup(file) === undefined) {
          const near = closestPaths(iso, file);
          const hint = near.length > 0 ? `; closest: ${near.join(', ')}` : '';
          problems.push({ in: 'body', path, message: `"${file}" is not in ${isoPath}${hint}` });
        }
      }
    });
  } catch (error) {
    if (error instanceof IsoError) throw invalidField('body', 'isoPath', `${isoPath}: ${error.message}`);
    throw error;
  }
  if (problems.length > 0) {
    throw new SmeltError('invalid_request', problems.map((p) => `body.${p.path}: ${p.message}`).join('; '), problems);
  }
}

/**
 * A boot's kernel and initrds must be there when a machine asks for them, so a missing file is refused now
 * rather than discovered at boot time: on the daemon's host, or inside the boot's ISO.
 */
async function checkBootFiles(isos: IsoCache, boot: BootFiles): Promise<void> {
  const files = bootFiles(boot);
  if (boot.isoPath !== undefined) return checkIsoFiles(isos, boot.isoPath, files);
  for (const [path, file] of files) {
    if (isUrl(file)) continue;
    if (!file.startsWith('/')) {
      throw invalidField(
        'body',
        path,
        `"${file}" must be an absolute path or an http(s) URL (paths inside an ISO need isoPath)`,
      );
    }
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) throw invalidField('body', path, `no such file on the daemon's host: ${file}`);
  }
}

export function createBootInventory(ctx: InventoryContext) {
  async function get(name: string): Promise<Boot> {
    const row = await ctx.boots.get(name);
    if (!row) throw notFound('boot', name);
    return row.value;
  }

  return {
    get,

    /** The boot's ISO as the reader sees it (volume, counts, El Torito catalog); undefined for a boot without. */
    async iso(name: string) {
      const boot = await get(name);
      if (boot.isoPath === undefined) return undefined;
      const isoPath = boot.isoPath;
      try {
        return await ctx.isos.with(isoPath, (iso) => ({
          path: isoPath,
          size: iso.size,
          volumeId: iso.volumeId,
          names: iso.names,
          files: iso.counts.files,
          directories: iso.counts.directories,
          catalog: (iso.bootCatalog?.entries ?? []).map((entry) => ({
            platform: entry.platform,
            emulation: entry.emulation,
            bootable: entry.bootable,
            ...(entry.path !== undefined && { path: entry.path }),
            ...(entry.size !== undefined && { size: entry.size }),
          })),
          problems: iso.bootCatalog?.problems ?? [],
        }));
      } catch (error) {
        if (error instanceof IsoError) throw conflict(`the ISO of boot "${name}" cannot be read: ${error.message}`);
        throw error;
      }
    },

    async list(query: { limit: number; cursor?: string | undefined; kind?: (typeof bootKinds)[number] | undefined }) {
      const boots = (await ctx.boots.all()).map((row) => row.value).filter((b) => !query.kind || b.kind === query.kind);
      return paginate(boots, (b) => b.name, query);
    },

    create: (spec: BootSpec) =>
      ctx.exclusive(async () => {
        if (await ctx.boots.get(spec.name)) throw conflict(`a boot named "${spec.name}" already exists`);
        await checkBootFiles(ctx.isos, spec);
        const now = ctx.timestamp();
        const boot: Boot = { ...spec, createdAt: now, updatedAt: now };
        await ctx.boots.put(boot.name, boot, 0);
        return boot;
      }),

    update: (name: string, patch: BootPatch) =>
      ctx.exclusive(async () => {
        const row = await ctx.boots.get(name);
        if (!row) throw notFound('boot', name);
        const merged = { ...applyMergePatch(row.value, patch), updatedAt: ctx.timestamp() };
        const parsed = bootSchema.safeParse(merged);
        if (!parsed.success) {
          throw new SmeltError(
            'invalid_request',
            'the boot would not be valid after this change',
            fieldErrorsFromZod(parsed.error, 'body'),
          );
        }
        await checkBootFiles(ctx.isos, parsed.data);
        await ctx.boots.put(name, parsed.data, row.version);
        return parsed.data;
      }),

    delete: (name: string) =>
      ctx.exclusive(async () => {
        const row = await ctx.boots.get(name);
        if (!row) throw notFound('boot', name);
        const users = (await ctx.deployments.all()).filter((d) => d.value.boot === name).map((d) => d.value.name);
        if (users.length > 0) {
          throw conflict(
            `boot "${name}" is used by deployment${users.length > 1 ? 's' : ''} ${users.join(', ')}; delete or change ${users.length > 1 ? 'them' : 'it'} first`,
          );
        }
        await ctx.boots.delete(name, row.version);
      }),
  };
}
