import { z } from 'zod';
import { httpUrlSchema } from './net.ts';
import { resourceNameSchema, timestampSchema } from './name.ts';
import { mergePatchShape } from './patch.ts';

export const bootKinds = ['installer', 'live', 'image', 'ipxe', 'local'] as const;
export const installerFlavours = ['preseed', 'kickstart', 'autoinstall'] as const;

/** A kernel or initrd: an absolute path the daemon can read, a path inside the boot's ISO, or an http(s) URL. */
export const bootFileSchema = z.union([
  httpUrlSchema,
  z.string().regex(/^\/?[^\0\s]+$/, { message: 'a file path or an http(s) URL, without spaces' }),
]);

const bootFields = {
  kind: z.enum(bootKinds).default('installer'),
  flavour: z.enum(installerFlavours).optional(),
  kernel: bootFileSchema.optional(),
  initrd: z.array(bootFileSchema).max(8).default([]),
  cmdline: z.string().max(4096).optional(),
  isoPath: z.string().startsWith('/', { message: 'the ISO path must be absolute' }).optional(),
  isoPrefix: resourceNameSchema.optional(),
  description: z.string().max(1024).optional(),
};

/** Rules that tie fields together, applied to what a client submits and to the result of a PATCH. */
function checkBootCoherence(
  boot: { kind: string; kernel?: string | undefined; isoPath?: string | undefined; isoPrefix?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if ((boot.kind === 'installer' || boot.kind === 'live' || boot.kind === 'image') && !boot.kernel) {
    ctx.addIssue({ code: 'custom', path: ['kernel'], message: `a boot of kind "${boot.kind}" needs a kernel` });
  }
  if (boot.isoPrefix !== undefined && boot.isoPath === undefined) {
    ctx.addIssue({ code: 'custom', path: ['isoPath'], message: 'isoPrefix is set, so isoPath is required' });
  }
  if (boot.isoPath !== undefined && boot.isoPrefix === undefined) {
    ctx.addIssue({ code: 'custom', path: ['isoPrefix'], message: 'isoPath is set, so isoPrefix is required' });
  }
}

/** What a client sends to create a boot. */
export const bootSpecSchema = z
  .strictObject({ name: resourceNameSchema, ...bootFields })
  .superRefine(checkBootCoherence);
export type BootSpec = z.infer<typeof bootSpecSchema>;
export type BootSpecInput = z.input<typeof bootSpecSchema>;

/** A JSON merge patch (RFC 7396) of a boot: a field set to null is cleared. The name cannot change. */
export const bootPatchSchema = z.strictObject(mergePatchShape(bootFields));
export type BootPatch = z.infer<typeof bootPatchSchema>;

export const bootSchema = z
  .strictObject({ name: resourceNameSchema, ...bootFields, createdAt: timestampSchema, updatedAt: timestampSchema })
  .superRefine(checkBootCoherence);
export type Boot = z.infer<typeof bootSchema>;

/** What `describe boot` shows beyond the boot itself: its ISO, the ISO's El Torito catalog, the URLs machines use. */
export const bootDetailsSchema = z.object({
  iso: z
    .object({
      path: z.string(),
      size: z.number(),
      volumeId: z.string(),
      names: z.string(),
      files: z.number(),
      directories: z.number(),
      catalog: z.array(
        z.object({
          platform: z.string(),
          emulation: z.string(),
          bootable: z.boolean(),
          path: z.string().optional(),
          size: z.number().optional(),
        }),
      ),
      problems: z.array(z.string()),
    })
    .optional(),
  urls: z.object({ kernel: z.string().optional(), initrd: z.array(z.string()), iso: z.string().optional() }),
});
export type BootDetails = z.infer<typeof bootDetailsSchema>;
