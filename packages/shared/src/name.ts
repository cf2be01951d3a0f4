import { z } from 'zod';

/**
 * Names of boots and deployments appear in URLs, file names and table columns, so they are DNS-label-like:
 * lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters.
 */
export const resourceNameSchema = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, {
  message: 'use 1-63 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit',
});

/** Time stamps are ISO 8601 UTC strings so that JSON, YAML and tables all show the same thing. */
export const timestampSchema = z.iso.datetime();
