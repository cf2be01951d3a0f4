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

/** Where an iSCSI target listens: HOST or HOST:PORT (3260 when absent). */
export const iscsiPortalSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?$/, { message: 'use HOST or HOST:PORT' });

/** An iSCSI qualified name (RFC 3720 §3.2.6.3.1), iqn.YYYY-MM.reversed-domain[:name]. */
export const iqnSchema = z.string().regex(/^iqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9.-]+(:[A-Za-z0-9.:_-]+)?$/, {
  message: 'an iSCSI qualified name, iqn.YYYY-MM.domain:name',
});

/** How a diskless system finds its root (issue "Diskless and image deployments"). Exactly one of the three. */
export const liveStyles = ['live-boot', 'dracut'] as const;
export const liveSchema = z.strictObject({
  /** NFS root: SERVER:/export/path. */
  nfsRoot: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9.-]*:\/[A-Za-z0-9._/-]*$/, { message: 'use SERVER:/export/path' })
    .optional(),
  /** Mount the NFS root read-write (default read-only). */
  rw: z.boolean().optional(),
  /** A squashfs image fetched into RAM with a tmpfs overlay: an http(s) URL, or a path the daemon serves. */
  rootfs: z
    .string()
    .regex(/^(https?:\/\/[^\s$"'\\]+|\/[^\s$"'\\]+)$/, { message: 'an http(s) URL or an absolute path' })
    .optional(),
  /** Which initramfs the boot's initrd is: Debian live-boot (boot=live fetch=) or dracut (root=live:). */
  style: z.enum(liveStyles).optional(),
  /**
   * iSCSI root, booted by iPXE's sanboot and named in DHCP option 17: an existing target (server and target), or
   * `base`, a disk image on the daemon's host of which the machine gets a copy-on-write disk of its own, exported
   * by the daemon (config `iscsi`; iscsi/cow-targets.ts), which then fills in server, target and lun itself.
   */
  iscsi: z
    .strictObject({
      server: iscsiPortalSchema.optional(),
      target: iqnSchema.optional(),
      lun: z.number().int().min(0).max(255).default(0),
      base: z
        .string()
        .regex(/^\/[^\s,$"'\\`]+$/, { message: "an absolute path on the daemon's host, without spaces or commas" })
        .optional(),
    })
    .optional(),
});
export type LiveSettings = z.infer<typeof liveSchema>;

/** An image deployment: a golden disk image streamed onto the machine's disk by the image writer. */
export const imageSchema = z.strictObject({
  /** .img, .img.gz (or .img.zst where the writer has zstd): an http(s) URL, or a path the daemon serves. */
  url: z
    .string()
    .regex(/^(https?:\/\/[^\s$"'\\`]+|\/[^\s$"'\\`]+)$/, { message: 'an http(s) URL or an absolute path' }),
  /** SHA-256 of the uncompressed image, checked after writing. */
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, { message: '64 lower-case hex digits' })
    .optional(),
  /** Grow the image's last partition to the end of the disk. */
  grow: z.boolean().optional(),
});
export type ImageSettings = z.infer<typeof imageSchema>;

/** Everything about a deployment that can be changed after it is made (the MAC cannot). */
const deploymentSettings = {
  boot: resourceNameSchema,
  type: z.enum(deploymentTypes).optional(),
  address: ipv4Schema.optional(),
  hostname: hostnameSchema.optional(),
  live: liveSchema.optional(),
  image: imageSchema.optional(),
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
