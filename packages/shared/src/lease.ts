import { z } from 'zod';
import { macSchema } from './mac.ts';
import { hostnameSchema, ipv4Schema } from './net.ts';
import { timestampSchema } from './name.ts';

export const leaseStates = ['offered', 'bound', 'released', 'declined'] as const;

/** An address handed out by the DHCP server: reserved by a deployment's address or taken from the pool. */
export const leaseSchema = z.strictObject({
  address: ipv4Schema,
  mac: macSchema,
  state: z.enum(leaseStates),
  reserved: z.boolean(),
  hostname: hostnameSchema.optional(),
  grantedAt: timestampSchema,
  expiresAt: timestampSchema,
});
export type Lease = z.infer<typeof leaseSchema>;
