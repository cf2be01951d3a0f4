/**
 * An image deployment with real firmware: a BIOS QEMU VM with an empty virtual disk network-boots the project's
 * image writer (scripts/image-writer.ts: Debian's kernel + a busybox initramfs, scripts/image-writer/init) from
 * smeltd, which writes a golden image onto the disk; the disk is then compared with the image byte for byte.
 *
 *   set-up    node scripts/image-writer.ts (built once, cached in .tools/image-writer) prints the smeltctl line that
 *             registers it; a golden image (8 MiB: an MBR whose boot code prints a line on the serial port, a
 *             partition table, every sector numbered) gzipped into a directory smeltd serves (files.dirs); smeltd in
 *             DHCP server mode on a bridge in a namespace of this file's own; a sparse 64 MiB raw file as the disk
 *   boot      smeltctl create boot --name writer --kind image (the writer, as the script printed it)
 *   deploy    smeltctl deploy --deploymentType image --image /golden.img.gz --imageSha256 <sha of the raw image>
 *             --disk /dev/vda → provisioning
 *   installer power on → iPXE gets the installer script (kind installer: smelt.job=, smelt.phonehome=) and fetches
 *             the writer's kernel and initrd
 *   writer    the writer loads its drivers by device (virtio-blk, e1000), sees vda, gets a lease from smeltd
 *   write     it fetches its job and runs it: GET /golden.img.gz, gunzip onto /dev/vda, SHA-256 checked
 *   deployed  the job phones home → get machines: deployed; describe machine: "Image written: 8.0 MiB"
 *   local     the writer reboots; iPXE is told to boot the local disk (kind local) and the written MBR runs
 *   disk      QEMU stopped by its PID; the raw file's first 8 MiB are the golden image, the rest still zero
 *
 * About 30 s on 2 CPUs (software emulation; 36 s when the writer is rebuilt first). The VM is killed by its PID
 * after at most 90 s; a failed step prints the serial console and the daemon's log, and the later steps are
 * skipped. The writer runs with smelt.failwait=0: a failure powers it off at once, so a broken step fails now
 * rather than at a timeout.
 *
 * Network safety: the bridge, the tap and smeltd live in a namespace of this file's own.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { createLab, logLines, smeltctlIn, smeltctlJson, waitUntil, type Lab } from '../harness/dhcp-lab.ts';
import type { Netns } from '../harness/netns.ts';
import { repoRoot } from '../harness/paths.ts';
import { run, runOk } from '../harness/process.ts';
import { startVm, vmBridge, type RunningVm } from '../harness/qemu.ts';
import type { RunningSmeltd } from '../harness/smeltd.ts';

const NET = '10.86.0';
const SERVER = `${NET}.2`;
const MAC = '52:54:00:86:00:01';
const VM_TIMEOUT_MS = 90_000;
const IMAGE_BYTES = 8 * 1024 * 1024;
const DISK_BYTES = 64 * 1024 * 1024;
/** What the golden image's boot code prints on COM1 when the firmware boots the written disk. */
const DISK_BANNER = 'SMELT-DISK: booted from the written disk';

type LogLine = Record<string, unknown> & { msg?: string; time?: string | number };
interface Machine {
  mac: string;
  state: string;
  progress?: { bytes: number; total?: number };
}
interface SmeltEvent {
  type: string;
  message: string;
}

/**
 * The golden image: sector 0 an MBR (boot code that writes DISK_BANNER to the serial port COM1 and halts, one
 * Linux partition from sector 2048 to the end, the 0x55AA signature); every other sector starts with its own
 * number in text and is filled with a pattern of that number, so that a misplaced sector cannot go unnoticed.
 */
function goldenImage(): Buffer {
  const image = Buffer.alloc(IMAGE_BYTES);
  for (let sector = 1; sector < IMAGE_BYTES / 512; sector++) {
    const at = sector * 512;
    for (let i = 0; i < 512; i++) image[at + i] = (sector * 31 + i * 7) & 0xff;
    image.write(`SMELT-GOLDEN sector ${String(sector)}\n`, at, 'latin1');
  }
  // 16-bit real mode at 0000:7C00: cli; xor ax,ax; mov ds,ax; cld; mov si,msg; mov dx,0x3f8;
  // next: lodsb; test al,al; jz done; out dx,al; jmp next; done: hlt; jmp done; msg: ...
  const code = Buffer.from([
    0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0xfc, 0xbe, 0x17, 0x7c, 0xba, 0xf8, 0x03, 0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb,
    0xf8, 0xf4, 0xeb, 0xfd,
  ]);
  assert.equal(code.length, 0x17);
  code.copy(image, 0);
  image.write(`${DISK_BANNER}\r\n\0`, code.length, 'latin1');
  image.writeUInt32LE(0x544c4d53, 440); // disk signature "SMLT"
  // The partition entry: bootable, CHS of LBA 2048 (255 heads, 63 sectors), type 0x83 (Linux), CHS of LBA 16383,
  // first LBA, number of sectors.
  const entry = Buffer.alloc(16);
  entry.set([0x80, 0x20, 0x21, 0x00, 0x83, 0x05, 0x04, 0x01]);
  entry.writeUInt32LE(2048, 8);
  entry.writeUInt32LE(IMAGE_BYTES / 512 - 2048, 12);
  entry.copy(image, 446);
  image[510] = 0x55;
  image[511] = 0xaa;
  return image;
}

const golden = goldenImage();
const goldenSha = createHash('sha256').update(golden).digest('hex');

let lab: Lab;
let ns: Netns;
let daemon: RunningSmeltd;
let vm: RunningVm | undefined;
let disk: string;
/** The boot the writer's script printed: `smeltctl create boot ...` split into words. */
let printedBoot: string[] = [];
const started = Date.now();
let t0 = 0;
let logFrom = 0;
let broken: string | undefined;
const timings: { step: string; at: number; took: number }[] = [];
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const dashes = (mac: string) => mac.replaceAll(':', '-');

function findLog(from: number, match: (line: LogLine) => boolean): { line: LogLine; index: number } | undefined {
  const lines = logLines(daemon) as LogLine[];
  for (let index = from; index < lines.length; index++) {
    const line = lines[index];
    if (line && match(line)) return { line, index };
  }
  return undefined;
}

const script = (kind: string) => (line: LogLine) =>
  line.msg === 'iPXE script' && line.mac === MAC && line.kind === kind;
const served = (match: (url: string) => boolean) => (line: LogLine) =>
  line.msg === 'http' && typeof line.url === 'string' && match(line.url) && line.status === 200;

function remaining(): number {
  return Math.max(1000, t0 + VM_TIMEOUT_MS - Date.now() - 2000);
}

async function ctl(args: string[]): Promise<string> {
  const result = await smeltctlIn(lab, ns, daemon, args);
  assert.equal(result.code, 0, `smeltctl ${args.join(' ')} exited ${String(result.code)}: ${result.stderr}`);
  return result.stdout;
}

async function machine(): Promise<Machine | undefined> {
  const list = await smeltctlJson<Machine[]>(lab, ns, daemon, ['get', 'machines']);
  return list.find((m) => m.mac === MAC);
}

function tail(text: string, lines: number): string {
  return text.replaceAll('\r', '').trimEnd().split('\n').slice(-lines).join('\n');
}

function diagnostics(): string {
  const parts = [`---- VM ${MAC}: serial console (last 50 lines) ----`, vm ? vm.serialTail(50) : '(no VM)'];
  if (vm) {
    parts.push('---- SeaBIOS debug log (last 10 lines) ----', tail(vm.firmwareLog(), 10));
    parts.push('---- QEMU ----', vm.command.join(' '), tail(vm.qemuOutput(), 10));
  }
  parts.push('---- smeltd log (last 40 lines) ----', tail(daemon.output(), 40));
  return parts.join('\n');
}

/** One step as a test: timed from power-on (or the set-up), printed as it passes; a failure skips the rest. */
function step(name: string, body: () => Promise<void> | void): void {
  test(name, async (t) => {
    if (broken !== undefined) {
      t.skip(`skipped: "${broken}" failed`);
      return;
    }
    const begun = Date.now();
    try {
      await body();
    } catch (error) {
      broken = name;
      console.log(`[${t0 === 0 ? 'set-up' : `+${seconds(Date.now() - t0)}`}] FAILED: ${name}\n${diagnostics()}`);
      throw error;
    }
    const at = t0 === 0 ? 0 : Date.now() - t0;
    timings.push({ step: name, at, took: Date.now() - begun });
    console.log(`[${t0 === 0 ? 'set-up' : `+${seconds(at)}`}] ${name} (${seconds(Date.now() - begun)})`);
  });
}

before(async () => {
  lab = createLab('realimage');
  // The writer (a kernel download and a build the first time; ~1 s when up to date) while the lab comes up.
  const built = run(process.execPath, [join(repoRoot, 'scripts/image-writer.ts')], { timeoutMs: 900_000 });
  ns = await lab.netns('qim');
  await vmBridge(lab, ns, SERVER, { pin: false });

  const images = join(lab.dir, 'images');
  mkdirSync(images);
  writeFileSync(join(images, 'golden.img.gz'), gzipSync(golden));
  disk = join(lab.dir, 'disk.raw');
  writeFileSync(disk, '');
  await runOk('truncate', ['-s', String(DISK_BYTES), disk]); // sparse
  daemon = await lab.smeltd(ns, {
    interface: 'br0',
    address: SERVER,
    dhcp: {
      mode: 'server',
      subnet: `${NET}.0/24`,
      pool: { start: `${NET}.100`, end: `${NET}.149` },
      gateway: `${NET}.1`,
      dns: [`${NET}.1`],
    },
    // iPXE is told http://SERVER/boot/<mac>.ipxe: port 80, inside the namespace only.
    http: { listen: `${SERVER}:80` },
    tftp: { listen: `${SERVER}:69` },
    files: { dirs: [images] },
    lifecycle: { pollSeconds: 2 },
    log: { level: 'debug' },
  });
  const writer = await built;
  assert.equal(writer.code, 0, `node scripts/image-writer.ts: ${writer.stderr}`);
  for (const line of writer.stderr.trim().split('\n')) console.log(`[writer] ${line}`);
  const printed = writer.stdout.trim();
  assert.doesNotMatch(printed, /['"\n]/, `one plain command line: ${printed}`);
  printedBoot = printed.split(' ');
  const gz = statSync(join(images, 'golden.img.gz')).size;
  console.log(
    `[set-up ${seconds(Date.now() - started)}] smeltd up at ${SERVER}; golden image ${String(IMAGE_BYTES)} bytes ` +
      `(${String(gz)} gzipped), sha256 ${goldenSha}; disk ${disk} (${String(DISK_BYTES)} bytes, sparse)`,
  );
});

after(async () => {
  await vm?.stop();
  const lines = timings.map(
    (t) =>
      `  ${(t.at === 0 ? 'set-up' : `+${seconds(t.at)}`).padStart(8)}  (${seconds(t.took).padStart(6)})  ${t.step}`,
  );
  console.log(`timings (from power-on; step duration in brackets):\n${lines.join('\n')}`);
  console.log(`whole file: ${seconds(Date.now() - started)}`);
  await lab.close();
});

describe(
  `BIOS VM ${MAC} with an empty disk: image writer → golden image on the disk → local boot`,
  { concurrency: 1 },
  () => {
    step('create boot --kind image from the line scripts/image-writer.ts printed', async () => {
      // smeltctl create boot --name image-writer --kind image --kernel K --initrd I --cmdline console=ttyS0
      assert.deepEqual(printedBoot.slice(0, 7), [
        'smeltctl',
        'create',
        'boot',
        '--name',
        'image-writer',
        '--kind',
        'image',
      ]);
      assert.deepEqual(printedBoot.slice(-2), ['--cmdline', 'console=ttyS0']);
      const args = printedBoot.slice(1);
      args[3] = 'writer';
      // A failed writer powers off at once here (default: it stays up 600 s for someone at the console).
      args[args.length - 1] = 'console=ttyS0 smelt.failwait=0';
      assert.match(await ctl(args), /boot "writer" created/);
    });

    step(
      'deploy --deploymentType image --image /golden.img.gz --imageSha256 --disk /dev/vda → provisioning',
      async () => {
        const out = await ctl([
          'deploy',
          '--MAC',
          MAC,
          '--boot',
          'writer',
          '--deploymentType',
          'image',
          '--image',
          '/golden.img.gz',
          '--imageSha256',
          goldenSha,
          '--disk',
          '/dev/vda',
        ]);
        assert.match(out, new RegExp(MAC));
        assert.equal((await machine())?.state, 'provisioning');
      },
    );

    step("power on → iPXE gets the installer script and fetches the writer's kernel and initrd", async () => {
      t0 = Date.now();
      vm = await startVm({
        netns: ns.name,
        bridge: 'br0',
        tap: 'tap-img',
        mac: MAC,
        firmware: 'bios',
        dir: lab.dir,
        timeoutMs: VM_TIMEOUT_MS,
        disk,
      });
      const installer = await waitUntil(
        'the installer script',
        () => findLog(0, script('installer')),
        remaining(),
        200,
      );
      assert.equal(findLog(0, script('hold')), undefined, 'a deployed machine is not held');
      const kernel = await waitUntil(
        'GET /boots/writer/kernel/... → 200',
        () =>
          findLog(
            installer.index,
            served((url) => url.startsWith('/boots/writer/kernel/')),
          ),
        remaining(),
        200,
      );
      const initrd = await waitUntil(
        'GET /boots/writer/initrd/0/... → 200',
        () =>
          findLog(
            installer.index,
            served((url) => url.startsWith('/boots/writer/initrd/0/')),
          ),
        remaining(),
        200,
      );
      logFrom = Math.max(kernel.index, initrd.index) + 1;
      console.log(
        `    kernel ${String(kernel.line.url)} in ${String(kernel.line.ms)} ms, initrd in ${String(initrd.line.ms)} ms`,
      );
    });

    step('the writer boots: drivers by device (e1000, virtio_blk), disk vda, a lease from smeltd', async () => {
      const running = vm;
      assert.ok(running);
      await running.waitForSerial(/SMELT-WRITER: started/, remaining());
      const drivers = await running.waitForSerial(/SMELT-WRITER: drivers: (.*)/, remaining());
      assert.match(drivers[1] ?? '', /\be1000\b/);
      assert.match(drivers[1] ?? '', /\bvirtio_blk\b/);
      const disks = await running.waitForSerial(/SMELT-WRITER: disks: (.*)/, remaining());
      assert.match(disks[1] ?? '', /\bvda \(64 MiB\)/);
      const lease = await running.waitForSerial(
        /SMELT-WRITER: (lease (\S+) from (\S+) on (\S+)|FAILED.*)/,
        remaining(),
      );
      assert.equal(lease[3], SERVER, lease[0]);
      console.log(`    ${drivers[0].trim()}\n    ${lease[0].trim()}`);
    });

    step('it fetches its job and writes the image: GET /golden.img.gz, SHA-256 verified', async () => {
      const running = vm;
      assert.ok(running);
      const job = await running.waitForSerial(/SMELT-WRITER: job (\S+)/, remaining());
      assert.match(
        job[1] ?? '',
        new RegExp(`^http://${SERVER.replaceAll('.', '\\.')}/jobs/${dashes(MAC)}/[^/]+/image\\.sh$`),
      );
      const wrote = await running.waitForSerial(/smelt-image: (wrote (\d+) bytes, sha256 (\S+)|FAILED.*)/, remaining());
      assert.equal(wrote[3], goldenSha, wrote[0]);
      assert.ok(Number(wrote[2]) >= IMAGE_BYTES, wrote[0]);
      const image = findLog(
        logFrom,
        served((url) => url === '/golden.img.gz'),
      );
      assert.ok(image, 'GET /golden.img.gz → 200 in the daemon log');
      console.log(`    ${wrote[0].trim()}; the image was served in ${String(image.line.ms)} ms`);
    });

    step(
      'it phones home → deployed; describe machine shows "Image written: 8.0 MiB"; event machine.installed',
      async () => {
        const hook = await waitUntil(
          'the phone-home',
          () => findLog(logFrom, (line) => line.msg === 'phone-home' && line.mac === MAC),
          remaining(),
          200,
        );
        assert.equal(hook.line.outcome, 'installed', JSON.stringify(hook.line));
        logFrom = hook.index + 1;
        const now = await machine();
        assert.equal(now?.state, 'deployed', JSON.stringify(now));
        assert.equal(now.progress?.bytes, IMAGE_BYTES, JSON.stringify(now.progress));
        const described = await ctl(['describe', 'machine', MAC]);
        assert.match(described, /Image written:\s+8\.0 MiB/, described);
        const events = await smeltctlJson<SmeltEvent[]>(lab, ns, daemon, ['get', 'events', '--MAC', MAC]);
        const story = events.map((e) => e.type).filter((t) => t === 'deployment.created' || t.startsWith('machine.'));
        assert.ok(story.includes('machine.installed'), JSON.stringify(events));
        assert.ok(!story.includes('machine.failed'), JSON.stringify(events));
      },
    );

    step('it reboots; iPXE is told to boot the local disk (kind local) and the written MBR runs', async () => {
      const running = vm;
      assert.ok(running);
      await running.waitForSerial(/SMELT-WRITER: DONE/, remaining());
      const local = await waitUntil('the local-boot script', () => findLog(logFrom, script('local')), remaining(), 200);
      assert.equal(findLog(logFrom, script('installer')), undefined, 'the writer was served again');
      // sanboot --drive 0x80: the firmware runs the boot code the writer put in sector 0.
      await running.waitForSerial(new RegExp(DISK_BANNER), Math.min(remaining(), 20_000));
      assert.equal(running.serial().match(/SMELT-WRITER: started/g)?.length, 1, 'the writer booted again');
      assert.equal((await machine())?.state, 'deployed');
      logFrom = local.index + 1;
      await running.stop();
    });

    step('QEMU stopped: the disk holds the golden image byte for byte, and nothing after it', () => {
      assert.equal(vm?.running(), false);
      assert.equal(statSync(disk).size, DISK_BYTES);
      const fd = openSync(disk, 'r');
      try {
        const head = Buffer.alloc(IMAGE_BYTES);
        assert.equal(readSync(fd, head, 0, IMAGE_BYTES, 0), IMAGE_BYTES);
        if (!head.equals(golden)) {
          let first = 0;
          while (first < IMAGE_BYTES && head[first] === golden[first]) first++;
          assert.fail(`the disk differs from the golden image at byte ${String(first)} (sector ${String(first >> 9)})`);
        }
        const rest = Buffer.alloc(DISK_BYTES - IMAGE_BYTES);
        assert.equal(readSync(fd, rest, 0, rest.length, IMAGE_BYTES), rest.length);
        assert.ok(
          rest.every((byte) => byte === 0),
          'the writer wrote past the end of the image',
        );
      } finally {
        closeSync(fd);
      }
      assert.equal(createHash('sha256').update(readFileSync(disk).subarray(0, IMAGE_BYTES)).digest('hex'), goldenSha);
    });
  },
);
