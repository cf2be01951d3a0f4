import type { z } from 'zod';
import { hostSettingsSchema, type HostSettings } from './host.ts';

/** Site-wide host settings that every deployment inherits for the fields it leaves unset. */
export const globalDefaultsSchema = hostSettingsSchema;
export type GlobalDefaults = z.infer<typeof globalDefaultsSchema>;

/** A deployment's settings with its unset fields filled in from the defaults (vars are merged key by key). */
export function effectiveHostSettings(defaults: GlobalDefaults, own: HostSettings): HostSettings {
  const merged: HostSettings = { ...defaults };
  for (const [key, value] of Object.entries(own as Record<string, unknown>)) {
    if (value !== undefined) Object.assign(merged, { [key]: value });
  }
  if (defaults.vars || own.vars) merged.vars = { ...defaults.vars, ...own.vars };
  return merged;
}
