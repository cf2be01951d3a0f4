import { z } from 'zod';

type Unwrapped<T> = T extends z.ZodOptional<infer Inner> ? Inner : T extends z.ZodDefault<infer Inner> ? Inner : T;
export type MergePatchShape<S extends z.ZodRawShape> = {
  [K in keyof S]: z.ZodOptional<z.ZodNullable<Unwrapped<S[K]>>>;
};

/**
 * The shape of a JSON merge patch (RFC 7396) over `shape`: every field optional (left alone) or null (cleared,
 * which for a field with a default restores the default when the result is parsed again).
 */
export function mergePatchShape<S extends z.ZodRawShape>(shape: S): MergePatchShape<S> {
  const patch: Record<string, z.ZodType> = {};
  for (const [key, field] of Object.entries(shape)) {
    const inner = field instanceof z.ZodOptional || field instanceof z.ZodDefault ? field.unwrap() : field;
    patch[key] = (inner as z.ZodType).nullable().optional();
  }
  return patch as MergePatchShape<S>;
}

/** Applies a merge patch to a plain object: null deletes the key, undefined leaves it, anything else replaces it. */
export function applyMergePatch(target: object, patch: object): Record<string, unknown> {
  const changes = Object.entries(patch).filter(([, value]) => value !== undefined);
  const touched = new Set(changes.map(([key]) => key));
  const kept = Object.entries(target).filter(([key]) => !touched.has(key));
  return Object.fromEntries([...kept, ...changes.filter(([, value]) => value !== null)]);
}
