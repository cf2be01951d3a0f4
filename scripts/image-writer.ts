/**
 * `node scripts/image-writer.ts [--out DIR] [--modules a,b] [--force] [--quiet] [--json]`: builds Smelt's image writer (the
 * kernel and initramfs an image deployment boots; scripts/lib/image-writer.ts) into DIR (default
 * .tools/image-writer/) as `vmlinuz` and `initrd.img`, and prints the smeltctl command that registers it:
 *
 *   smeltctl create boot --name image-writer --kind image --kernel DIR/vmlinuz --initrd DIR/initrd.img --cmdline console=ttyS0
 *
 * on stdout (what it did goes to stderr), or with --json everything it knows as JSON. Needs: apt-get with the
 * Debian lists (the kernel package is downloaded once, ~70 MB, into .tools/kernel), dpkg, depmod (kmod), cpio,
 * busybox-static; zstd and sfdisk (fdisk) are copied in when present. An unchanged build takes about a second.
 */
import { parseArgs } from 'node:util';
import { buildImageWriter } from './lib/image-writer.ts';

const usage = `usage: node scripts/image-writer.ts [--out DIR] [--modules NAME,...] [--force] [--quiet] [--json]
  --out DIR        where vmlinuz and initrd.img go (default .tools/image-writer)
  --modules LIST   more kernel modules to include when the kernel has them (e.g. mlx5_core,megaraid_sas)
  --force          build even when the output is up to date
  --quiet          say nothing on stderr unless something was built (for set-up scripts)
  --json           print what was built as JSON instead of the smeltctl command`;

/** A command line as someone would type it: arguments with spaces or quotes quoted. */
function shellLine(argv: readonly string[]): string {
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`)).join(' ');
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        out: { type: 'string' },
        modules: { type: 'string' },
        force: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
    return 2;
  }
  if (values.help === true) {
    console.log(usage);
    return 0;
  }
  const extraModules = (values.modules ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const writer = await buildImageWriter({
    ...(values.out !== undefined && { out: values.out }),
    extraModules,
    force: values.force === true,
    note: (line) => {
      console.error(`image-writer: ${line}`);
    },
  });
  if (values.json === true) {
    console.log(JSON.stringify(writer, null, 2));
    return 0;
  }
  if (values.quiet === true && !writer.built) {
    console.log(`smeltctl ${shellLine(writer.createBoot)}`);
    return 0;
  }
  const state = writer.built ? 'built' : 'up to date';
  console.error(`image-writer: ${state}: ${writer.kernel} (${writer.kernelPackage}), ${writer.initrd}`);
  console.error(`image-writer: drivers: ${writer.modules.join(' ')}`);
  if (writer.absent.length > 0) console.error(`image-writer: not in this kernel: ${writer.absent.join(' ')}`);
  for (const tool of writer.missingTools) {
    console.error(`image-writer: no ${tool.name} here (package ${tool.package}): the writer cannot do ${tool.for}`);
  }
  console.error('image-writer: register it with:');
  console.log(`smeltctl ${shellLine(writer.createBoot)}`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`image-writer: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
