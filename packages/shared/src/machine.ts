import { z } from 'zod';
import { deploymentStates } from './deployment.ts';
import { macSchema } from './mac.ts';
import { resourceNameSchema, timestampSchema } from './name.ts';
import { ipv4Schema } from './net.ts';

/** A machine's state is derived, never stored: its deployment's state, or "free" when it has none. */
export const machineStates = ['free', ...deploymentStates] as const;
export type MachineState = (typeof machineStates)[number];

const labelsSchema = z.record(
  z.string().regex(/^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/, { message: 'label keys are lower-case words' }),
  z.string().max(253),
);

/** Facts learned from the wire (DHCP options 93, 60, 77, 97, relay, lease) and by the operator (labels). */
export const machineRecordSchema = z.strictObject({
  mac: macSchema,
  firstSeen: timestampSchema.optional(),
  lastSeen: timestampSchema.optional(),
  arch: z.string().max(64).optional(),
  vendorClass: z.string().max(255).optional(),
  userClass: z.string().max(255).optional(),
  uuid: z.string().max(64).optional(),
  relay: ipv4Schema.optional(),
  lastLease: ipv4Schema.optional(),
  vendor: z.string().max(128).optional(),
  /** An image writer's last report: bytes written so far of the total (when known). */
  progress: z
    .strictObject({
      bytes: z.number().int().nonnegative(),
      total: z.number().int().positive().optional(),
      at: timestampSchema,
    })
    .optional(),
  labels: labelsSchema.default({}),
  createdAt: timestampSchema,
  updatedAt: timestampSchema,
});
export type MachineRecord = z.infer<typeof machineRecordSchema>;

/** An operator registering a machine before it has been seen (for example to label it). */
export const machineSpecSchema = z.strictObject({ mac: macSchema, labels: labelsSchema.optional() });
export type MachineSpec = z.infer<typeof machineSpecSchema>;

export const machinePatchSchema = z.strictObject({ labels: labelsSchema.optional() });
export type MachinePatch = z.infer<typeof machinePatchSchema>;

/** A machine as the API shows it: the stored record, its derived state and the deployment bound to it. */
export const machineSchema = machineRecordSchema.extend({
  state: z.enum(machineStates),
  deployment: resourceNameSchema.nullable(),
  /** Its place in the install queue while a boot storm is paced (admission control); absent when not waiting. */
  queue: z.number().int().positive().optional(),
});
export type Machine = z.infer<typeof machineSchema>;
