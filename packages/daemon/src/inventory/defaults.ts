import { globalDefaultsSchema, type GlobalDefaults } from '@smelt/shared/defaults';
import { applyMergePatch } from '@smelt/shared/patch';
import { fieldErrorsFromZod } from '@smelt/shared/problem';
import { SmeltError } from '../errors.ts';
import type { InventoryContext } from './context.ts';

const KEY = 'global';

export function createDefaultsInventory(ctx: InventoryContext) {
  const read = async () => (await ctx.defaults.get(KEY)) ?? { key: KEY, value: {}, version: 0 };
  return {
    get: async (): Promise<GlobalDefaults> => (await read()).value,

    replace: (defaults: GlobalDefaults) =>
      ctx.exclusive(async () => {
        await ctx.defaults.put(KEY, defaults, (await read()).version);
        return defaults;
      }),

    update: (patch: object) =>
      ctx.exclusive(async () => {
        const current = await read();
        const parsed = globalDefaultsSchema.safeParse(applyMergePatch(current.value, patch));
        if (!parsed.success) {
          throw new SmeltError(
            'invalid_request',
            'the defaults would not be valid after this change',
            fieldErrorsFromZod(parsed.error, 'body'),
          );
        }
        await ctx.defaults.put(KEY, parsed.data, current.version);
        return parsed.data;
      }),
  };
}
