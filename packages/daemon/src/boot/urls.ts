import type { Boot } from '@smelt/shared/boot';
import { macToDashes } from '@smelt/shared/mac';

/**
 * The machine-facing URLs (DESIGN.md §9), all built here from the configured base URL, never from a request.
 * MACs appear in dash form; path segments are percent-encoded.
 */
export function machineUrls(baseUrl: string) {
  const seg = (value: string) => encodeURIComponent(value);
  return {
    base: baseUrl,
    script: (mac: string) => `${baseUrl}/boot/${macToDashes(mac)}.ipxe`,
    /** The directory of a machine's answer files (NoCloud wants it with the trailing slash). */
    answers: (mac: string, token: string) => `${baseUrl}/answers/${macToDashes(mac)}/${seg(token)}/`,
    /** The image writer's job for this machine. */
    job: (mac: string, token: string) => `${baseUrl}/jobs/${macToDashes(mac)}/${seg(token)}/image.sh`,
    hook: (mac: string, token: string, outcome: 'installed' | 'failed' | 'progress') =>
      `${baseUrl}/hooks/${macToDashes(mac)}/${seg(token)}/${outcome}`,
    /** The whole ISO of a boot, for installers that fetch it (Ubuntu's url=). */
    iso: (boot: Boot) => `${baseUrl}/iso/${seg(boot.name)}.iso`,
    /** A boot's ISO contents as a tree (Anaconda's inst.repo=). */
    isoTree: (boot: Boot) => (boot.isoPrefix === undefined ? undefined : `${baseUrl}/${seg(boot.isoPrefix)}/`),
    /** Where a machine fetches a boot's kernel or one of its initrds: an http(s) source as it is. */
    bootFile(boot: Boot, file: string, role: 'kernel' | number): string {
      if (/^https?:\/\//.test(file)) return file;
      const path = file.replace(/^\/+/, '').split('/').map(seg).join('/');
      if (boot.isoPrefix !== undefined) return `${baseUrl}/${seg(boot.isoPrefix)}/${path}`;
      const name = seg(file.slice(file.lastIndexOf('/') + 1));
      return role === 'kernel'
        ? `${baseUrl}/boots/${seg(boot.name)}/kernel/${name}`
        : `${baseUrl}/boots/${seg(boot.name)}/initrd/${String(role)}/${name}`;
    },
  };
}
export type MachineUrls = ReturnType<typeof machineUrls>;
