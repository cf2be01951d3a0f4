/**
 * How a simulated machine retries, stage by stage: one table, quoted in the report. The figures are the firmware's
 * where it has them; where it has none (HTTP), a choice written down here.
 */

export const stageNames = ['dhcpPxe', 'tftp', 'dhcpIpxe', 'script', 'files'] as const;
export type StageName = (typeof stageNames)[number];

export const stageTitles: Record<StageName, string> = {
  dhcpPxe: 'DHCP (PXE ROM)',
  tftp: 'TFTP undionly.kpxe',
  dhcpIpxe: 'DHCP (iPXE)',
  script: 'HTTP script',
  files: 'HTTP kernel + initrd',
};

export interface Firmware {
  /**
   * PXE ROM DHCP: a DISCOVER (and a REQUEST) is sent again after 4, 8, 16 s and given up 32 s after the fourth —
   * PXE 2.1 §2.2.1's schedule, 60 s in all. A NAK restarts at DISCOVER with a fresh schedule, as often as it
   * comes (RFC 2131 §4.4.1; the storm's deadline bounds it); each restart counts as a retry.
   */
  pxeDhcpMs: readonly number[];
  /**
   * iPXE DHCP: iPXE's retry timer starts at 1 s and doubles; it fails when the next timeout would pass 10 s, so a
   * DISCOVER goes out at 0, 1, 3 and 7 s and the attempt fails at 15 s.
   */
  ipxeDhcpMs: readonly number[];
  /**
   * iPXE, offered an address by a server that does not say PXEClient (option 60) or no-ProxyDHCP (175.176), keeps
   * collecting offers: it requests only at its first timer expiry after 2 s, i.e. ~3 s after the first DISCOVER
   * (FIELD-NOTES.md: "iPXE waits ~3 s for ProxyDHCP offers"). Counted as a proxy wait.
   */
  ipxeProxyWaitMs: number;
  /**
   * TFTP (the PXE ROM loading undionly.kpxe): RRQ with tsize 0 and blksize 1468; a packet unanswered is sent again
   * after 1, 2, 4, 8, 8 s and the transfer given up 8 s after the sixth (31 s of silence). An ERROR ends it.
   */
  tftpMs: readonly number[];
  tftpBlksize: number;
  /**
   * HTTP (iPXE: script, kernel, initrd; bench/storm/client.ts says why kernel and initrd come over a second
   * connection, from a lower-priority download process): a request with no byte for 30 s, a reset, a non-200 status
   * or a short body is a failed attempt; it is tried again 1 s later on a new connection, 3 attempts in all. iPXE
   * itself has no such loop; an operator's script retries (`imgfetch ... ||`).
   */
  httpIdleMs: number;
  httpAttempts: number;
  httpPauseMs: number;
}

export const firmware: Firmware = {
  pxeDhcpMs: [4000, 8000, 16_000, 32_000],
  ipxeDhcpMs: [1000, 2000, 4000, 8000],
  ipxeProxyWaitMs: 3000,
  tftpMs: [1000, 2000, 4000, 8000, 8000, 8000],
  tftpBlksize: 1468,
  httpIdleMs: 30_000,
  httpAttempts: 3,
  httpPauseMs: 1000,
};

/** The firmware table as report lines. */
export function describeFirmware(f: Firmware = firmware): string[] {
  const s = (ms: readonly number[]) => ms.map((value) => value / 1000).join(', ');
  return [
    `DHCP as the PXE ROM: option 60 \`PXEClient:Arch:00000:UNDI:002001\`, 93 = 0, 94 = UNDI 2.1, 97 = a UUID per machine, 55 as a firmware PXE stack asks (FIELD-NOTES); sent again after ${s(f.pxeDhcpMs.slice(0, -1))} s, given up ${(f.pxeDhcpMs.at(-1) ?? 0) / 1000} s after the last (PXE 2.1); a NAK restarts at DISCOVER (counted as a retry)`,
    `TFTP: RRQ \`tsize 0 blksize ${f.tftpBlksize}\` from the machine's leased address, lock-step, every byte compared; a packet sent again after ${s(f.tftpMs.slice(0, -1))} s, given up ${(f.tftpMs.at(-1) ?? 0) / 1000} s after the last; an ERROR fails the machine`,
    `DHCP as iPXE: the same options plus 77 \`iPXE\`, 175 (iPXE's features), 61, iPXE's option 55; sent again after ${s(f.ipxeDhcpMs.slice(0, -1))} s, given up ${(f.ipxeDhcpMs.at(-1) ?? 0) / 1000} s after the last (iPXE's 1-10 s retry timer); an offer without option 60 PXEClient or 175.176 makes it wait ${f.ipxeProxyWaitMs / 1000} s for ProxyDHCP before requesting, as iPXE does`,
    `HTTP: the boot file URL of the second ACK (the script), then the script's \`kernel\` and \`initrd\` URLs, in order, from the leased address (\`User-Agent: iPXE/1.0.0\`); the script over one connection, kernel and initrd over one keep-alive connection of their own (iPXE would reuse the first; here a download process at nice 10 reads the bulk, so that the simulator's saturated CPU does not delay other machines' DHCP and TFTP); an attempt fails on ${f.httpIdleMs / 1000} s without a byte, a reset, a status other than 200 or a wrong length or byte; ${f.httpAttempts} attempts, ${f.httpPauseMs / 1000} s apart`,
  ];
}
