import { z } from 'zod';

/** List endpoints return at most `limit` items in key order; `next` is the cursor for the following page. */
export const pageQueryShape = {
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(512).optional(),
};

export function pageSchema<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next: z.string().nullable() });
}
