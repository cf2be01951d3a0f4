/**
 * The whole machine lifecycle driven only by smeltctl, with the installer served from inside an ISO: the issue's
 * "real machines end to end" as an operator would run it.
 *
 *   xorriso builds a test ISO holding the guest's kernel and initramfs as casper/vmlinuz and casper/initrd →
 *   smeltctl create boot --name guest --isoPath <iso> --isoPrefix guest --kernel casper/vmlinuz
 *     --initrd casper/initrd --cmdline console=ttyS0 --flavour preseed →
 *   a diskless BIOS VM powers on: held (smeltctl get machines: free) →
 *   smeltctl deploy --MAC ... --boot guest: the held script's next poll boots the installer, iPXE fetching
 *     /guest/casper/vmlinuz and /guest/casper/initrd (read by byte range from the ISO) →
 *   the guest gets a lease from smeltd (DHCP server mode), fetches its preseed file, phones home
 *     (smeltctl get machines: deployed; smeltctl get events --MAC: machine.installed) →
 *   it reboots, and its next network boot is told to boot the local disk.
 *
 * Every action on smeltd and every check of its state is a smeltctl command (no API calls); what the machine was
 * told and did comes from smeltd's debug log and the VM's serial console and firmware log (boot-lifecycle.ts).
 * One BIOS VM (SeaBIOS + the e1000's iPXE ROM), ~30 s for the file; the VM is killed by its PID after 90 s at most.
 * `pnpm demo` (scripts/demo.ts) runs the same steps for people.
 *
 * Network safety: the bridge, the tap and smeltd live in a namespace of this file's own.
 */
import { createLifecycle } from '../harness/boot-lifecycle.ts';
import { lifecycleSuite } from '../harness/lifecycle-suite.ts';

const life = createLifecycle({
  name: 'realboot-iso',
  tags: { segment: 'xis' },
  net: '10.99.0',
  dhcp: 'server',
  source: 'iso',
  mac: '52:54:00:99:00:01',
  note: (line) => {
    console.log(`[guest] ${line}`);
  },
});

lifecycleSuite(life, { name: 'ISO lifecycle by smeltctl: create boot --isoPath → held → deploy → installed → local' });
