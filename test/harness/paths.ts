import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const smeltdBin = `${repoRoot}packages/daemon/bin/smeltd`;
export const smeltctlBin = `${repoRoot}packages/ctl/bin/smeltctl`;
