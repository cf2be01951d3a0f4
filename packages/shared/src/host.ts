import { z } from 'zod';
import { hostnameSchema, httpUrlSchema, ipv4Schema, netmaskSchema } from './net.ts';

/**
 * Host settings a deployment can set and the global defaults can supply: every field is optional, and a
 * deployment's unset fields inherit the defaults' (see `effectiveHostSettings`).
 */
export const hostSettingsShape = {
  gateway: ipv4Schema.optional(),
  netmask: netmaskSchema.optional(),
  dns: z.array(ipv4Schema).max(8).optional(),
  ntp: z
    .array(z.union([ipv4Schema, hostnameSchema]))
    .max(8)
    .optional(),
  domain: hostnameSchema.optional(),
  packages: z
    .array(z.string().regex(/^[A-Za-z0-9@][A-Za-z0-9@._+:~-]*$/, { message: 'not a package name' }))
    .optional(),
  sshKeys: z
    .array(
      z.string().regex(/^(ssh|ecdsa|sk)-[a-z0-9@.-]+ [A-Za-z0-9+/=]+( [^\n]*)?$/, { message: 'not an SSH public key' }),
    )
    .optional(),
  user: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]{0,31}$/, { message: 'not a user name' })
    .optional(),
  passwordHash: z
    .string()
    .regex(/^\$[0-9a-z]+\$[^\s:]+$/, { message: 'not a crypt(3) hash (e.g. from `mkpasswd -m sha-512`)' })
    .optional(),
  disk: z
    .string()
    .regex(/^\/dev\/[A-Za-z0-9/_.-]+$/, { message: 'not a device path (e.g. /dev/sda)' })
    .optional(),
  mirror: httpUrlSchema.optional(),
  proxy: httpUrlSchema.optional(),
  vars: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'variable names are identifiers' }), z.string())
    .optional(),
};

export const hostSettingsSchema = z.strictObject(hostSettingsShape);
export type HostSettings = z.infer<typeof hostSettingsSchema>;
