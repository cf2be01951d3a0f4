/**
 * Smelt's benchmarks: `pnpm bench NAME [options]` (node bench/run.ts NAME ...). Each bench measures smeltd side by
 * side with the reference servers a user would otherwise pick, in the same run; results go to BENCHMARKS.md.
 */
const benches: Record<string, { what: string; load: () => Promise<{ main: (argv: string[]) => Promise<number> }> }> = {
  tftp: { what: 'TFTP MiB/s: smeltd vs tftpd-hpa and atftpd (curl, atftp)', load: () => import('./tftp/main.ts') },
  dhcp: { what: 'DHCP DORA/s, p50/p99, lost leases: smeltd vs Kea and dnsmasq', load: () => import('./dhcp/main.ts') },
  http: { what: 'HTTP MiB/s from an ISO, req/s, RSS: smeltd vs nginx', load: () => import('./http/main.ts') },
  storm: {
    what: 'Boot storm: N PXE/iPXE machines at once, per-stage p50/p99: smeltd vs dnsmasq + nginx',
    load: () => import('./storm/main.ts'),
  },
  vms: {
    what: 'Real QEMU VMs network-booting at once: smeltd vs dnsmasq + nginx',
    load: () => import('./vms/main.ts'),
  },
};

const [name, ...args] = process.argv.slice(2);
const bench = name === undefined ? undefined : benches[name];
if (!bench) {
  const names = Object.entries(benches).map(([n, b]) => `  ${n.padEnd(8)} ${b.what}`);
  process.stderr.write(`usage: pnpm bench NAME [options]   (NAME --help for its options)\n${names.join('\n')}\n`);
  process.exitCode = name === undefined || name === '--help' || name === '-h' ? 0 : 2;
} else {
  const { main } = await bench.load();
  process.exitCode = await main(args);
}
