import { fileURLToPath } from 'node:url';

/** The repository root (ends with a slash). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
