import { z } from 'zod';

type Unwrapped<T> = T extends z.ZodOptional<infer Inner> ? Inner : T extends z.ZodDefault<infer Inner> ? Inner : T;
export type MergePatchShape<S extends z.ZodRawShape> = {
  [K in keyof S]: z.ZodOptional<z.ZodNullable<Unwrapped<S[K]>>>;
};

/**
 * The shape of a JSON merge patch (RFC 7396) over `shape`: every field optional (left alone) or null (cleared,
 * which for a field with a default restores the default when the result is parsed again). The type is the
 * top-level view; records additionally accept null for a key at run time.
 */
export function mergePatchShape<S extends z.ZodRawShape>(shape: S): MergePatchShape<S> {
  const patch: Record<string, z.ZodType> = {};
  for (const [key, field] of Object.entries(shape)) {
    const inner = (
      field instanceof z.ZodOptional || field instanceof z.ZodDefault ? field.unwrap() : field
    ) as z.ZodType;
    // A record (vars, labels) is merged key by key, so one of its keys can be cleared with null too.
    const merged =
      inner instanceof z.ZodRecord ? z.record(inner.keyType, (inner.valueType as z.ZodType).nullable()) : inner;
    patch[key] = merged.nullable().optional();
  }
  return patch as MergePatchShape<S>;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Applies a JSON merge patch (RFC 7396 §2): null deletes a key, undefined leaves it, an object merges into an
 * object key by key (so `vars: {b: "2"}` keeps the other vars), and anything else, arrays included, replaces.
 */
export function applyMergePatch(target: object, patch: object): Record<string, unknown> {
  const result: Record<string, unknown> = { ...(target as Record<string, unknown>) };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const current = result[key];
    if (value === null) {
      result[key] = undefined;
    } else if (isPlainObject(value)) {
      result[key] = applyMergePatch(isPlainObject(current) ? current : {}, value);
    } else {
      result[key] = value;
    }
  }
  return Object.fromEntries(Object.entries(result).filter(([, value]) => value !== undefined));
}
