import { stat } from 'node:fs/promises';
import { bootSchema, type Boot, type BootPatch, type BootSpec, type bootKinds } from '@smelt/shared/boot';
import { applyMergePatch } from '@smelt/shared/patch';
import { fieldErrorsFromZod } from '@smelt/shared/problem';
import { conflict, invalidField, notFound, SmeltError } from '../errors.ts';
import type { InventoryContext } from './context.ts';
import { paginate } from './page.ts';

const isUrl = (value: string) => /^https?:\/\//.test(value);

/**
 * A boot's kernel and initrds must be there when a machine asks for them, so a missing local file is refused
 * now rather than discovered at boot time. Paths inside an ISO are checked by the ISO reader.
 */
async function checkBootFiles(boot: Pick<BootSpec, 'kernel' | 'initrd' | 'isoPath'>): Promise<void> {
  const files: [string, string][] = [
    ...(boot.kernel === undefined ? [] : [['kernel', boot.kernel] as [string, string]]),
    ...boot.initrd.map((file, i): [string, string] => [`initrd.${i}`, file]),
  ];
  if (boot.isoPath !== undefined) {
    const iso = await stat(boot.isoPath).catch(() => undefined);
    if (!iso?.isFile()) throw invalidField('body', 'isoPath', `no such file on the daemon's host: ${boot.isoPath}`);
    return;
  }
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

    async list(query: { limit: number; cursor?: string | undefined; kind?: (typeof bootKinds)[number] | undefined }) {
      const boots = (await ctx.boots.all()).map((row) => row.value).filter((b) => !query.kind || b.kind === query.kind);
      return paginate(boots, (b) => b.name, query);
    },

    create: (spec: BootSpec) =>
      ctx.exclusive(async () => {
        if (await ctx.boots.get(spec.name)) throw conflict(`a boot named "${spec.name}" already exists`);
        await checkBootFiles(spec);
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
        await checkBootFiles(parsed.data);
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
