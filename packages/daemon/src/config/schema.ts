import { z } from 'zod';
import { iqnSchema, iscsiPortalSchema } from '@smelt/shared/deployment';
import {
  cidrContains,
  cidrSchema,
  ipv4Schema,
  ipv4ToNumber,
  numberToIpv4,
  parseCidr,
  type Cidr,
} from '@smelt/shared/net';

/** HOST:PORT, with an IPv4 host, a bracketed IPv6 host or a name; port 0 asks the OS for a free one. */
export const listenSchema = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/, { message: 'use HOST:PORT, e.g. 0.0.0.0:7480' })
  .refine((text) => Number(/:([0-9]{1,5})$/.exec(text)?.[1] ?? 0) <= 65535, { message: 'port above 65535' });

export function splitListen(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(':');
  return { host: listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(listen.slice(colon + 1)) };
}

export const dhcpModes = ['server', 'proxy', 'off'] as const;

/** What a subnet hands out; the top-level dhcp keys describe the first, directly attached subnet. */
const subnetFields = {
  subnet: cidrSchema.optional(),
  pool: z.strictObject({ start: ipv4Schema, end: ipv4Schema }).optional(),
  gateway: ipv4Schema.optional(),
  dns: z.array(ipv4Schema).default([]),
  ntp: z.array(ipv4Schema).default([]),
  domain: z.string().min(1).max(253).optional(),
  leaseTime: z.number().int().min(60).max(31_536_000).default(3600),
};
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const storeSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('sqlite'),
    // When a write counts as done (store/sqlite.ts): `disk` (absent: the default) once it is fsynced, `os` once
    // the kernel has it (survives kill -9 of the daemon, not a power loss: what Kea's memfile lease file does).
    sync: z.enum(['disk', 'os']).optional(),
  }),
  z.strictObject({
    kind: z.literal('etcd'),
    endpoints: z.array(z.url()).min(1, { message: 'list at least one etcd endpoint' }),
    prefix: z.string().startsWith('/').default('/smelt'),
  }),
]);

/** The whole daemon configuration (DESIGN.md §9). Every key has a default except the address machines reach. */
export const configSchema = z
  .strictObject({
    interface: z.string().min(1).optional(),
    address: ipv4Schema,
    dataDir: z.string().min(1).default('/var/lib/smelt'),
    api: z.strictObject({ listen: listenSchema.default('0.0.0.0:7480') }).prefault({}),
    http: z
      .strictObject({
        listen: listenSchema.default('0.0.0.0:80'),
        /**
         * Machines downloading their kernel and initrd at once; the others wait in iPXE and ask again, in order
         * (a boot storm becomes a queue). 0: no limit.
         */
        maxInstalls: z.number().int().min(0).max(100_000).default(200),
        /** The longest one machine holds a download slot. */
        slotSeconds: z.number().int().min(10).max(3600).default(120),
        /**
         * Threads sending large boot files with sendfile(2) (zero copy, off the event loop); 0 streams them
         * through the event loop instead. One (about 12 MiB) outran nginx's two workers here (BENCHMARKS.md).
         */
        sendfileThreads: z.number().int().min(0).max(16).default(1),
      })
      .prefault({}),
    tftp: z
      .strictObject({
        // 0.0.0.0 means one socket per local IPv4 address, so each transfer answers from the address it was
        // asked on (node:dgram has no IP_PKTINFO).
        listen: listenSchema.default('0.0.0.0:69'),
        /** Transfers in flight at once; requests beyond it wait in a queue (a storm becomes a queue). */
        maxTransfers: z.number().int().min(1).max(100_000).default(1000),
        /** Transfers in flight per client address; more wait in the queue. */
        maxPerPeer: z.number().int().min(1).max(1000).default(8),
        /** RFC 2348 blksize upper bound; also capped by the interface MTU (1468 on a 1500-byte Ethernet). */
        maxBlksize: z.number().int().min(512).max(65464).default(65464),
        /** RFC 7440 windowsize upper bound. */
        maxWindowsize: z.number().int().min(1).max(64).default(64),
        /** First retransmission timeout in seconds when the client asks none (RFC 2349 allows 1-255). */
        timeout: z.number().min(0.1).max(255).default(1),
        /** Retransmissions of one block or window before the transfer is abandoned. */
        retries: z.number().int().min(1).max(50).default(5),
        /** Requests waiting for a transfer slot beyond which new ones are refused with a TFTP error. */
        maxQueue: z.number().int().min(0).max(1_000_000).default(10_000),
        /**
         * Send a window of DATA blocks with one syscall (Linux UDP GSO) where the kernel allows it; false sends one
         * datagram per block (for comparisons, or a path that mishandles GSO).
         */
        gso: z.boolean().default(true),
      })
      .prefault({}),
    /** Directories served at the root of the virtual tree (TFTP and HTTP), searched in order before ipxe.dir. */
    files: z
      .strictObject({ dirs: z.array(z.string().startsWith('/', { message: 'use absolute paths' })).default([]) })
      .prefault({}),
    dhcp: z
      .strictObject({
        // proxy never hands out addresses, so a first run cannot disturb a network it does not own.
        mode: z.enum(dhcpModes).default('proxy'),
        /**
         * Interfaces whose segments are served directly; empty means [interface]. Each gets its own socket bound
         * to the device, so a broadcast is known by the interface it arrived on and its reply leaves by it.
         */
        interfaces: z.array(z.string().min(1)).default([]),
        /** Server port (clients use port + 1); only tests and benchmarks change it. */
        port: z.number().int().min(1).max(65534).default(67),
        /** PXE boot-server port answered in proxy mode (PXE 2.1 §2.2.1). */
        proxyPort: z.number().int().min(1).max(65535).default(4011),
        ...subnetFields,
        /** Further subnets: a second interface's, or those behind DHCP relays (chosen by giaddr). */
        subnets: z.array(z.strictObject({ ...subnetFields, subnet: cidrSchema })).default([]),
        /** Packets per second accepted from one MAC; the excess is dropped and counted. */
        rateLimit: z.number().int().min(1).max(10_000).default(20),
        /** Seconds an offered address stays held for the client that was offered it. */
        offerTimeout: z.number().int().min(5).max(3600).default(60),
        /** Seconds a DECLINEd address is kept out of the pool (RFC 2131 §3.1.5: it may be in use). */
        declineTimeout: z.number().int().min(60).max(604_800).default(3600),
      })
      .prefault({}),
    ipxe: z
      .strictObject({
        dir: z.string().min(1).default('/usr/lib/ipxe'),
        /** First stages by firmware (boot/firmware.ts), as paths in the served tree. */
        bios: z.string().min(1).default('undionly.kpxe'),
        /** ipxe.efi carries its own NIC drivers; snponly.efi uses the firmware's, which some NICs need. */
        efi64: z.string().min(1).default('ipxe.efi'),
        arm64: z.string().min(1).default('arm64-efi/ipxe.efi'),
      })
      .prefault({}),
    /**
     * The operator's own answer-file templates, by file name, in place of the built-in renderers (logic-less:
     * `{{ deployment.hostname }}`, `{{#each deployment.packages}}`, values escaped for the file's format).
     */
    templates: z
      .partialRecord(
        z.enum(['preseed.cfg', 'ks.cfg', 'user-data', 'meta-data']),
        z.string().startsWith('/', { message: 'use absolute paths' }),
      )
      .default({}),
    lifecycle: z
      .strictObject({
        /** What a machine nobody has deployed is told (DESIGN.md §3): wait for a deployment, or leave it alone. */
        unknown: z.enum(['hold', 'ignore', 'reboot', 'poweroff']).default('hold'),
        /** Seconds between a held machine's polls for a deployment. */
        pollSeconds: z.number().int().min(2).max(3600).default(10),
        /** Seconds a deployment may stay provisioning before it is marked failed. */
        provisionTimeout: z.number().int().min(60).max(604_800).default(7200),
        /** The boot that wipes a machine released with --wipe; its phone-home marks the machine free. */
        wipeBoot: z.string().min(1).optional(),
      })
      .prefault({}),
    /**
     * Copy-on-write iSCSI disks for diskless machines (iscsi/cow-targets.ts): for a deployment's live.iscsi.base,
     * the daemon makes a qcow2 overlay per machine, exposes it with qemu-storage-daemon (FUSE) and has tgtd
     * export it to that machine's initiator name alone. Needs root (tgtadm's socket, /dev/fuse), a running tgtd and
     * the Debian packages tgt, qemu-utils and qemu-system-common.
     */
    iscsi: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** HOST:PORT machines reach tgtd at; absent: the daemon's address, port 3260. */
        portal: iscsiPortalSchema.optional(),
        /** tgtd's control port (`tgtd -C N`, `tgtadm -C N`); 0 is the system's tgtd. */
        control: z.number().int().min(0).max(65_535).default(0),
        /** Where the overlays live; absent: dataDir/iscsi. Each holds only what its machine wrote. */
        overlays: z.string().startsWith('/', { message: 'use an absolute path' }).optional(),
        /** Targets are named PREFIX-<mac>; the daemon removes only targets of this prefix. */
        iqn: iqnSchema.default('iqn.2026-11.org.smelt:disk'),
        /** The daemon's targets take tgtd target ids from here up, clear of an operator's own. */
        firstTid: z.number().int().min(1).max(1_000_000).default(1000),
      })
      .prefault({}),
    store: storeSchema.default({ kind: 'sqlite' }),
    log: z.strictObject({ level: z.enum(logLevels).default('info') }).prefault({}),
  })
  // Runs even when other fields failed to parse, so that one typo does not hide these problems (ConfigError
  // promises all of them at once); it therefore reads its input as unknown.
  .superRefine(
    (config, ctx) => {
      checkRelations(config, ctx);
    },
    { when: () => true },
  );

const objectAt = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
const textAt = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * Rules between settings: what server mode needs, and each subnet's pool inside its subnet, leaving our addresses
 * out.
 */
function checkRelations(raw: unknown, ctx: z.RefinementCtx): void {
  const config = objectAt(raw);
  const dhcp = objectAt(config.dhcp);
  if (dhcp.mode === 'server') {
    if (textAt(dhcp.subnet) === undefined)
      ctx.addIssue({ code: 'custom', path: ['dhcp', 'subnet'], message: 'required in server mode' });
    if (dhcp.pool === undefined)
      ctx.addIssue({ code: 'custom', path: ['dhcp', 'pool'], message: 'required in server mode' });
    const interfaces = Array.isArray(dhcp.interfaces) ? dhcp.interfaces : [];
    if (interfaces.length === 0 && textAt(config.interface) === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['dhcp', 'interfaces'],
        message: 'server mode needs the interface to serve: set interface or dhcp.interfaces',
      });
    }
  }
  checkSubnet(ctx, dhcp, ['dhcp'], textAt(config.address));
  if (Array.isArray(dhcp.subnets)) {
    dhcp.subnets.forEach((entry, index) => {
      checkSubnet(ctx, objectAt(entry), ['dhcp', 'subnets', String(index)], textAt(config.address));
    });
  }
}

function checkSubnet(ctx: z.RefinementCtx, fields: Record<string, unknown>, at: string[], server?: string): void {
  const subnetText = textAt(fields.subnet);
  const gateway = textAt(fields.gateway);
  const pool = fields.pool === undefined ? undefined : objectAt(fields.pool);
  const subnet = subnetText === undefined ? undefined : parseCidr(subnetText);
  if (subnet && gateway !== undefined) checkInside(ctx, subnet, subnetText, [...at, 'gateway'], gateway);
  if (pool === undefined) return;
  const startText = textAt(pool.start);
  const endText = textAt(pool.end);
  if (subnet) {
    if (startText !== undefined) checkInside(ctx, subnet, subnetText, [...at, 'pool', 'start'], startText);
    if (endText !== undefined) checkInside(ctx, subnet, subnetText, [...at, 'pool', 'end'], endText);
  }
  const start = startText === undefined ? undefined : ipv4ToNumber(startText);
  const end = endText === undefined ? undefined : ipv4ToNumber(endText);
  if (start === undefined || end === undefined) return;
  if (start > end) {
    ctx.addIssue({
      code: 'custom',
      path: [...at, 'pool'],
      message: `start ${startText ?? ''} is after end ${endText ?? ''}`,
    });
  }
  for (const [what, address] of [
    ['server address', server],
    ['gateway', gateway],
  ] as const) {
    const value = address === undefined ? undefined : ipv4ToNumber(address);
    if (value !== undefined && value >= start && value <= end) {
      ctx.addIssue({ code: 'custom', path: [...at, 'pool'], message: `contains the ${what} ${address ?? ''}` });
    }
  }
}

function checkInside(ctx: z.RefinementCtx, subnet: Cidr, text: string | undefined, path: string[], address: string) {
  const value = ipv4ToNumber(address);
  if (value !== undefined && !cidrContains(subnet, value)) {
    ctx.addIssue({ code: 'custom', path, message: `${address} is not inside ${text ?? numberToIpv4(subnet.network)}` });
  }
}

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/**
 * Every settable key, with how a string from the environment or a flag becomes its value. These are the stable
 * names of DESIGN.md §9: SMELT_ + the path in upper snake case, or --path.
 */
export const configKeys = {
  interface: 'string',
  address: 'string',
  dataDir: 'string',
  'api.listen': 'string',
  'http.listen': 'string',
  'http.maxInstalls': 'number',
  'http.slotSeconds': 'number',
  'http.sendfileThreads': 'number',
  'tftp.listen': 'string',
  'tftp.maxTransfers': 'number',
  'tftp.maxPerPeer': 'number',
  'tftp.maxBlksize': 'number',
  'tftp.maxWindowsize': 'number',
  'tftp.timeout': 'number',
  'tftp.retries': 'number',
  'tftp.maxQueue': 'number',
  'tftp.gso': 'boolean',
  'files.dirs': 'list',
  'dhcp.mode': 'string',
  'dhcp.interfaces': 'list',
  'dhcp.port': 'number',
  'dhcp.proxyPort': 'number',
  'dhcp.subnet': 'string',
  'dhcp.pool.start': 'string',
  'dhcp.pool.end': 'string',
  'dhcp.gateway': 'string',
  'dhcp.dns': 'list',
  'dhcp.ntp': 'list',
  'dhcp.domain': 'string',
  'dhcp.leaseTime': 'number',
  'dhcp.rateLimit': 'number',
  'dhcp.offerTimeout': 'number',
  'dhcp.declineTimeout': 'number',
  'ipxe.dir': 'string',
  'ipxe.bios': 'string',
  'ipxe.efi64': 'string',
  'ipxe.arm64': 'string',
  'lifecycle.unknown': 'string',
  'lifecycle.pollSeconds': 'number',
  'lifecycle.provisionTimeout': 'number',
  'lifecycle.wipeBoot': 'string',
  'iscsi.enabled': 'boolean',
  'iscsi.portal': 'string',
  'iscsi.control': 'number',
  'iscsi.overlays': 'string',
  'iscsi.iqn': 'string',
  'iscsi.firstTid': 'number',
  'store.kind': 'string',
  'store.sync': 'string',
  'store.endpoints': 'list',
  'store.prefix': 'string',
  'log.level': 'string',
} as const satisfies Record<string, 'string' | 'number' | 'list' | 'boolean'>;
export type ConfigKey = keyof typeof configKeys;

/** dataDir → SMELT_DATA_DIR, dhcp.pool.start → SMELT_DHCP_POOL_START. */
export function envNameOf(key: ConfigKey): string {
  return (
    'SMELT_' +
    key
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .replaceAll('.', '_')
      .toUpperCase()
  );
}
