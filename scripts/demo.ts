/**
 * `pnpm demo`: Smelt end to end in about half a minute, for someone new to it. A diskless machine (a QEMU VM with
 * real firmware) is installed from an ISO and then boots from its disk, every step driven by smeltctl:
 *
 *   smeltd starts in a private network namespace (its DHCP server, HTTP and TFTP on a bridge there) → a test ISO
 *   is built with xorriso → smeltctl create boot --isoPath → the VM powers on and is held → smeltctl deploy →
 *   the VM boots the installer's kernel and initrd straight from the ISO, phones home → deployed → it reboots and
 *   is told to boot from its local disk.
 *
 * The steps are those of test/e2e/real-boot-iso.test.ts (test/harness/boot-lifecycle.ts); this prints one line
 * per step, with how long it took and the smeltctl commands it ran, then the machine's history as smeltctl tells
 * it, and removes everything it made (the VM, smeltd, the namespace, temporary files), also on Ctrl-C.
 *
 * Needs root (network namespaces) and what `./run.sh setup` installs (QEMU, iPXE ROMs, xorriso, scapy, and the
 * guest kernel and initramfs it builds into .tools/kernel and .tools/guest). Touches none of the machine's own interfaces.
 */
import { existsSync } from 'node:fs';
import { styleText } from 'node:util';
import { createLifecycle, type LifecycleStep, type StepId } from '../test/harness/boot-lifecycle.ts';
import { smeltctlIn } from '../test/harness/dhcp-lab.ts';
import { E1000_ROM, QEMU } from '../test/harness/qemu.ts';

const MAC = '52:54:00:88:00:01';

/** A word of explanation under some steps. */
const NOTES: Partial<Record<StepId, string>> = {
  held: 'An unknown machine is registered as free and kept in an iPXE script that asks again every 2 s.',
  guest: 'The slow part: QEMU emulates the CPU in software here. The guest is a stand-in for a Debian installer.',
  local: 'No disk in this VM, so its BIOS ends with "No bootable device": the point is that it was not reinstalled.',
};

const bold = (text: string) => styleText('bold', text);
const dim = (text: string) => styleText('dim', text);
const ok = styleText('green', '✔');
const bad = styleText('red', '✘');
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`.padStart(6);
const indent = ' '.repeat(11);

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function preflight(): string[] {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('run it as root: the demo makes a network namespace, a bridge and a tap');
  const missing = [`/usr/bin/${QEMU}`, E1000_ROM, '/usr/bin/xorriso', '/usr/bin/python3'].filter((f) => !existsSync(f));
  if (missing.length > 0) problems.push(`missing ${missing.join(', ')}: run ./run.sh setup first`);
  return problems;
}

/** The commands a step ran, as someone would type them: `-o json` (the demo reads them) left out, polls once. */
function shown(commands: readonly string[]): string[] {
  const lines = commands.map((command) => command.replace(/ -o json$/, ''));
  return lines.filter((line, index) => line !== lines[index - 1]);
}

async function main(): Promise<number> {
  const problems = preflight();
  if (problems.length > 0) {
    for (const problem of problems) say(`${bad} ${problem}`);
    return 2;
  }
  const life = createLifecycle({
    name: 'demo',
    tags: { segment: 'dmo' },
    net: '10.88.0',
    dhcp: 'server',
    source: 'iso',
    mac: MAC,
    note: (line) => {
      say(dim(`${indent}(${line})`));
    },
  });
  let cleaning: Promise<void> | undefined;
  const cleanUp = () => (cleaning ??= life.close());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`\n${bad} interrupted; cleaning up ...`);
      void cleanUp().finally(() => process.exit(130));
    });
  }

  say(bold('Smelt demo: a diskless machine installed from an ISO, every step driven by smeltctl'));
  say(
    dim(
      'The machine is a QEMU VM with real firmware (SeaBIOS and its NIC’s iPXE ROM) on a private network namespace;\n' +
        'smeltd is its DHCP, HTTP and TFTP server there. Nothing touches this machine’s own network.',
    ),
  );
  say();

  const started = Date.now();
  let failed: { step: LifecycleStep; error: unknown } | undefined;
  // A step's time runs from the previous step's event to its own, by the daemon's log where it has the moment
  // (a step may notice an event after a while, or an earlier step's wait may already have covered it).
  let mark = started;
  for (const step of life.steps) {
    try {
      const result = await step.run();
      const at = Math.max(mark, result.at ?? Date.now());
      say(`${ok} ${seconds(at - mark)}  ${result.summary}`);
      mark = at;
      const note = NOTES[step.id];
      if (note !== undefined) say(dim(`${indent}${note}`));
      for (const command of shown(result.commands)) say(dim(`${indent}$ ${command}`));
    } catch (error) {
      failed = { step, error };
      say(`${bad} ${seconds(Date.now() - mark)}  ${step.title}`);
      break;
    }
  }

  if (failed) {
    const message = failed.error instanceof Error ? failed.error.message : String(failed.error);
    say();
    say(styleText('red', message));
    say(dim(life.diagnostics()));
  } else {
    // The machine's story as smeltd recorded it, the way an operator would look it up.
    const args = ['get', 'events', '--MAC', MAC];
    const events = await smeltctlIn(life.lab(), life.smeltdNs(), life.daemon(), args);
    say();
    say(`${bold('The machine’s history, as smeltd recorded it')} ${dim(`($ smeltctl ${args.join(' ')})`)}`);
    say((events.code === 0 ? events.stdout : events.stderr).trimEnd().replace(/^/gm, '  '));
    say();
  }

  const cleaningStarted = Date.now();
  await cleanUp();
  say(`${ok} ${seconds(Date.now() - cleaningStarted)}  cleaned up: the VM, smeltd, the namespace and temporary files`);
  say();
  const total = `${((Date.now() - started) / 1000).toFixed(1)} s`;
  say(failed ? `${bad} the demo failed after ${total}` : bold(`Done in ${total}.`));
  if (!failed) {
    say(
      dim(
        'The same steps run as a test: node --test test/e2e/real-boot-iso.test.ts. README.md shows how to point\n' +
          'smeltd at real machines.',
      ),
    );
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
