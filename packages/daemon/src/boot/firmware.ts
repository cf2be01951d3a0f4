import { macToDashes } from '@smelt/shared/mac';

/**
 * Which first stage a network-booting client needs, from what its DHCP packet says about its firmware. A table,
 * not branches: RFC 4578 §2.1 option 93 (client system architecture; IANA "Processor Architecture Types"), the
 * vendor class (PXEClient / HTTPClient, PXE 2.1 and UEFI 2.5 HTTP Boot) and whether iPXE is already running.
 */

export type FirstStageKey = 'bios' | 'efi64' | 'arm64';

interface ArchRow {
  /** What `smeltctl get machines` shows as ARCH. */
  arch: string;
  firmware: 'bios' | 'uefi' | 'other';
  /** The first stage for this firmware over TFTP, if we have one. */
  stage?: FirstStageKey;
  /** UEFI HTTP Boot (option 93 15–19, vendor class HTTPClient): the first stage is fetched by URL. */
  http?: boolean;
}

/** IANA Processor Architecture Types (RFC 4578 §2.1, RFC 5970 §3.3 registry). */
export const architectures: ReadonlyMap<number, ArchRow> = new Map<number, ArchRow>([
  [0, { arch: 'x86', firmware: 'bios', stage: 'bios' }],
  [1, { arch: 'pc98', firmware: 'other' }],
  [2, { arch: 'ia64', firmware: 'uefi' }],
  [3, { arch: 'alpha', firmware: 'other' }],
  [4, { arch: 'arcx86', firmware: 'other' }],
  [5, { arch: 'lean-client', firmware: 'other' }],
  [6, { arch: 'i386-efi', firmware: 'uefi' }],
  [7, { arch: 'x86_64-efi', firmware: 'uefi', stage: 'efi64' }],
  [8, { arch: 'xscale-efi', firmware: 'uefi' }],
  // 9 is "EFI BC", but x86-64 firmware in the field sends it for x64 UEFI (RFC 4578 errata 4090).
  [9, { arch: 'x86_64-efi', firmware: 'uefi', stage: 'efi64' }],
  [10, { arch: 'arm32-efi', firmware: 'uefi' }],
  [11, { arch: 'arm64-efi', firmware: 'uefi', stage: 'arm64' }],
  [12, { arch: 'ppc-openfirmware', firmware: 'other' }],
  [13, { arch: 'ppc-epapr', firmware: 'other' }],
  [14, { arch: 'power-opal', firmware: 'other' }],
  [15, { arch: 'i386-efi-http', firmware: 'uefi', http: true }],
  [16, { arch: 'x86_64-efi-http', firmware: 'uefi', stage: 'efi64', http: true }],
  [17, { arch: 'ebc-efi-http', firmware: 'uefi', stage: 'efi64', http: true }],
  [18, { arch: 'arm32-efi-http', firmware: 'uefi', http: true }],
  [19, { arch: 'arm64-efi-http', firmware: 'uefi', stage: 'arm64', http: true }],
  [20, { arch: 'x86-bios-http', firmware: 'bios', http: true }],
  [21, { arch: 'arm32-uboot', firmware: 'other' }],
  [22, { arch: 'arm64-uboot', firmware: 'other' }],
  [23, { arch: 'arm32-uboot-http', firmware: 'other', http: true }],
  [24, { arch: 'arm64-uboot-http', firmware: 'other', http: true }],
  [25, { arch: 'riscv32-efi', firmware: 'uefi' }],
  [26, { arch: 'riscv32-efi-http', firmware: 'uefi', http: true }],
  [27, { arch: 'riscv64-efi', firmware: 'uefi' }],
  [28, { arch: 'riscv64-efi-http', firmware: 'uefi', http: true }],
  [29, { arch: 'riscv128-efi', firmware: 'uefi' }],
  [30, { arch: 'riscv128-efi-http', firmware: 'uefi', http: true }],
  [31, { arch: 's390-basic', firmware: 'other' }],
  [32, { arch: 's390-extended', firmware: 'other' }],
  [33, { arch: 'mips32-efi', firmware: 'uefi' }],
  [34, { arch: 'mips64-efi', firmware: 'uefi' }],
  [35, { arch: 'sunway32-efi', firmware: 'uefi' }],
  [36, { arch: 'sunway64-efi', firmware: 'uefi' }],
  [37, { arch: 'loongarch32-efi', firmware: 'uefi' }],
  [38, { arch: 'loongarch32-efi-http', firmware: 'uefi', http: true }],
  [39, { arch: 'loongarch64-efi', firmware: 'uefi' }],
  [40, { arch: 'loongarch64-efi-http', firmware: 'uefi', http: true }],
  [41, { arch: 'arm-rpiboot', firmware: 'other' }],
]);

/** What the firmware told us about itself. */
export interface FirmwareFacts {
  /** Option 93, in the client's order (usually one entry). */
  archs: readonly number[];
  vendorClass?: string | undefined;
  /** User class "iPXE" or option 175 present: iPXE is already running. */
  ipxe: boolean;
}

export interface FirstStageSettings {
  /** Paths of the first stages in the served tree (config ipxe.bios / efi64 / arm64). */
  files: Readonly<Record<FirstStageKey, string>>;
  /** Base URL of the machine-facing HTTP server, no trailing slash. */
  httpBase: string;
  mac: string;
}

export type FirstStage =
  /** The per-MAC iPXE script, for a client already running iPXE: this is what breaks the chainload loop. */
  | { kind: 'script'; url: string }
  /** Firmware PXE: siaddr + file name over TFTP. */
  | { kind: 'tftp'; file: string }
  /** UEFI HTTP Boot: the first stage by URL, with option 60 "HTTPClient" echoed (UEFI 2.5 §24.7). */
  | { kind: 'http'; url: string }
  /** A network boot we have no first stage for; the number is logged. */
  | { kind: 'unsupported'; arch: number };

/** The name shown for an option 93 value (unknown numbers show as "arch-N"). */
export function archName(code: number): string {
  return architectures.get(code)?.arch ?? `arch-${code}`;
}

export function isPxeClient(vendorClass: string | undefined): boolean {
  return vendorClass?.startsWith('PXEClient') === true;
}

export function isHttpClient(vendorClass: string | undefined): boolean {
  return vendorClass?.startsWith('HTTPClient') === true;
}

/** Whether the client asks to network boot at all (PXE or HTTP Boot vendor class, or iPXE). */
export function isNetworkBoot(facts: FirmwareFacts): boolean {
  return facts.ipxe || isPxeClient(facts.vendorClass) || isHttpClient(facts.vendorClass);
}

export function chooseFirstStage(facts: FirmwareFacts, settings: FirstStageSettings): FirstStage {
  // The MAC in dash form: a colon in a URL path is legal but iPXE percent-encodes it, which helps nobody reading logs.
  if (facts.ipxe) return { kind: 'script', url: `${settings.httpBase}/boot/${macToDashes(settings.mac)}.ipxe` };
  // A client without option 93 is a legacy BIOS PXE ROM (RFC 4578 §2.1 made the option mandatory later).
  const code = facts.archs[0] ?? 0;
  const row = architectures.get(code);
  const stage = row?.stage;
  if (!row || !stage) return { kind: 'unsupported', arch: code };
  const file = settings.files[stage];
  if (row.http || isHttpClient(facts.vendorClass)) return { kind: 'http', url: `${settings.httpBase}/${file}` };
  return { kind: 'tftp', file };
}
