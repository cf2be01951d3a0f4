import { z } from 'zod';
import { hostSettingsShape } from './host.ts';
import { macSchema } from './mac.ts';
import { resourceNameSchema, timestampSchema } from './name.ts';
import { hostnameSchema, ipv4Schema } from './net.ts';
import { mergePatchShape } from './patch.ts';

/** The seeds' --deploymentType values. Installer flavours render answer files; the others are their own issues. */
export const deploymentTypes = ['preseed', 'kickstart', 'autoinstall', 'live', 'image'] as const;
export type DeploymentType = (typeof deploymentTypes)[number];

/** Where a deployment is in the lifecycle (DESIGN.md §3). A machine without a deployment is "free". */
export const deploymentStates = ['provisioning', 'deployed', 'running', 'failed', 'wiping'] as const;
export type DeploymentState = (typeof deploymentStates)[number];

/** Everything about a deployment that can be changed after it is made (the MAC cannot). */
const deploymentSettings = {
  boot: resourceNameSchema,
  type: z.enum(deploymentTypes).optional(),
  address: ipv4Schema.optional(),
  hostname: hostnameSchema.optional(),
  ...hostSettingsShape,
};
const deploymentFields = { mac: macSchema, ...deploymentSettings };

/** What a client sends to create a deployment. Without a name, the daemon names it after the hostname or MAC. */
export const deploymentSpecSchema = z.strictObject({ name: resourceNameSchema.optional(), ...deploymentFields });
export type DeploymentSpec = z.infer<typeof deploymentSpecSchema>;
export type DeploymentSpecInput = z.input<typeof deploymentSpecSchema>;

/** A JSON merge patch (RFC 7396): absent leaves a field alone, null clears it. The MAC cannot change. */
export const deploymentPatchSchema = z.strictObject(
  mergePatchShape({ name: resourceNameSchema, ...deploymentSettings }),
);
export type DeploymentPatch = z.infer<typeof deploymentPatchSchema>;

export const deploymentSchema = z.strictObject({
  name: resourceNameSchema,
  ...deploymentFields,
  state: z.enum(deploymentStates),
  createdAt: timestampSchema,
  updatedAt: timestampSchema,
});
export type Deployment = z.infer<typeof deploymentSchema>;
