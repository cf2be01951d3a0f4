/**
 * One run's network: a namespace of its own (bench/lib/netns.ts: removed at the end, or by the next bench if this
 * one was killed) with a bridge br0 carrying the server's address; the VMs' taps are made there by startVm
 * (test/harness/qemu.ts). On the bridge: the router-advertisement responder both servers get (iPXE otherwise
 * waits ~15 s for an answer to its router solicitations on every boot), and tcpdump writing DHCP, TFTP and HTTP
 * SYNs to a pcap file. Nothing touches the machine's own interfaces.
 */
import { join } from 'node:path';
import { pinBridge } from '../../test/harness/dhcp-lab.ts';
import { routerAdvertiserArgv } from '../../test/harness/qemu.ts';
import { createNetns, type Netns } from '../lib/netns.ts';
import { startService, waitFor, type Service } from '../lib/process.ts';
import { captureFilter, fullCaptureFilter } from './pcap.ts';
import { NET, SERVER_ADDRESS } from './servers.ts';

export const BRIDGE = 'br0';

export interface VmLab {
  ns: Netns;
  bridge: string;
  pcap: string;
  /** Stops tcpdump (its file is complete afterwards). */
  stopCapture(): Promise<void>;
  remove(): Promise<void>;
}

export async function createVmLab(tag: string, dir: string, options: { captureHttp?: boolean } = {}): Promise<VmLab> {
  const ns = await createNetns(tag);
  const services: Service[] = [];
  try {
    await ns.exec(['ip', 'link', 'add', BRIDGE, 'type', 'bridge', 'forward_delay', '0']);
    // A MAC of its own, and an idle veth port for its carrier (test/harness/dhcp-lab.ts): a bridge otherwise takes
    // the lowest of its ports' MACs and changes it when that port goes — here when a booted VM is stopped and its
    // tap removed — and the VMs still booting, whose ARP caches hold the server's old MAC, lose their next
    // connections (SYNs unanswered until their ARP entries expire).
    await pinBridge(ns, { bridge: BRIDGE, anchor: true });
    await ns.exec(['sysctl', '-qw', `net.ipv6.conf.${BRIDGE}.disable_ipv6=1`]);
    await ns.exec(['ip', 'addr', 'add', `${SERVER_ADDRESS}/24`, 'dev', BRIDGE]);
    await ns.exec(['ip', 'link', 'set', BRIDGE, 'up']);
    const deadline = Date.now() + 10_000;
    while (!(await ns.exec(['ip', '-br', 'link', 'show', BRIDGE])).includes(' UP ')) {
      if (Date.now() > deadline) throw new Error(`${BRIDGE} did not come up`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // A socket bound to 0.0.0.0 in a namespace cannot send a limited broadcast without a route for it.
    await ns.exec(['ip', 'route', 'add', '255.255.255.255/32', 'dev', BRIDGE]);
    const [raCommand, ...raArgs] = ns.wrap(routerAdvertiserArgv(BRIDGE));
    const ra = startService('router advertiser', raCommand ?? 'ip', raArgs);
    services.push(ra);
    await waitFor('the router advertiser', () => /^ready$/m.test(ra.output()) || !ra.alive(), 30_000, 100);
    if (!ra.alive()) throw new Error(`the router advertiser failed: ${ra.output()}`);
    const pcap = join(dir, 'capture.pcap');
    // -Z root: tcpdump would otherwise drop to its own user and could not write the file; -U: packet by packet;
    // --immediate-mode: without it libpcap hands packets over a ring block at a time (or after its timeout), and the
    // last second's packets were lost when tcpdump was stopped.
    const [tdCommand, ...tdArgs] = ns.wrap([
      'tcpdump',
      '-i',
      BRIDGE,
      '-nn',
      '-U',
      '--immediate-mode',
      '-s',
      '1600',
      '-Z',
      'root',
      '-w',
      pcap,
      options.captureHttp ? fullCaptureFilter : captureFilter,
    ]);
    const tcpdump = startService('tcpdump', tdCommand ?? 'ip', tdArgs);
    services.push(tcpdump);
    await waitFor('tcpdump', () => tcpdump.output().includes('listening on') || !tcpdump.alive(), 15_000, 50);
    if (!tcpdump.alive()) throw new Error(`tcpdump failed: ${tcpdump.output()}`);
    return {
      ns,
      bridge: BRIDGE,
      pcap,
      stopCapture: () => tcpdump.stop(),
      remove: async () => {
        for (const service of services.reverse()) await service.stop();
        await ns.remove();
      },
    };
  } catch (error) {
    for (const service of services.reverse()) await service.stop();
    await ns.remove();
    throw error;
  }
}

export const LAB_DESCRIPTION =
  `one network namespace per run, fresh for every run: a bridge br0 (forward delay 0, IPv6 off, a fixed MAC: a ` +
  `bridge otherwise takes its lowest port's MAC and changes it when that VM's tap goes; an idle veth port keeps ` +
  `its carrier up before the VMs' taps join) with the server at ` +
  `${SERVER_ADDRESS}/24 (pool ${NET}.100-149), a tap per VM on it; a router-advertisement responder (scapy) on the ` +
  `bridge for both servers (iPXE otherwise waits ~15 s on its IPv6 router solicitations); tcpdump on the bridge`;
