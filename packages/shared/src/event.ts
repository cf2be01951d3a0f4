import { z } from 'zod';
import { macSchema } from './mac.ts';
import { timestampSchema } from './name.ts';

export const eventTypes = [
  'machine.discovered',
  'machine.seen',
  'lease.granted',
  'lease.released',
  'lease.declined',
  'dhcp.pool-full',
  'file.served',
  'boot.created',
  'boot.updated',
  'boot.deleted',
  'deployment.created',
  'deployment.updated',
  'deployment.deleted',
  'machine.created',
  'machine.updated',
  'machine.deleted',
  'defaults.updated',
  'machine.installed',
  'machine.failed',
  'machine.released',
  'machine.wiping',
  'machine.wiped',
  'machine.reinstalling',
  'machine.woken',
] as const;
export type EventType = (typeof eventTypes)[number];

/** Something that happened; kept in a bounded history and streamed to `smeltctl get events --watch`. */
export const eventSchema = z.strictObject({
  seq: z.number().int().nonnegative(),
  time: timestampSchema,
  type: z.enum(eventTypes),
  mac: macSchema.optional(),
  subject: z.string().optional(),
  message: z.string(),
});
export type SmeltEvent = z.infer<typeof eventSchema>;
