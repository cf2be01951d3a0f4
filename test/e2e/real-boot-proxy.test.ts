/**
 * Proxy mode with real firmware: the site's own DHCP server (dnsmasq, handing out addresses, no PXE configuration
 * at all) and smeltd in `dhcp.mode: proxy` on the same segment, as beside an office router. A diskless BIOS VM
 * (SeaBIOS + the e1000's iPXE ROM) gets its address from dnsmasq and its boot from smeltd — the ProxyDHCP offer
 * names its per-MAC script — and walks the whole lifecycle (boot-lifecycle.ts): held, smeltctl deploy, the guest
 * installer (whose own DHCP client also leases from dnsmasq), phone-home, and its next boot told to boot locally.
 *
 * Layout (dhcp-proxy.test.ts's): a switch namespace holds the bridge with dnsmasq on 10.98.0.1, the RA responder
 * and the VM's tap; smeltd sits in a namespace of its own at 10.98.0.2, plugged into the bridge by a veth pair, so
 * that a watcher on the bridge port of that veth sees every DHCP packet smeltd sends and nothing else's.
 * Checked at the end: dnsmasq's lease file has the VM, and not one packet from smeltd carried an address.
 *
 * One VM, ~30 s for the file; it is killed by its PID after 90 s at most. Network safety: everything is in
 * namespaces this file makes and removes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createLifecycle, type LogLine } from '../harness/boot-lifecycle.ts';
import { DHCP_CLIENT, opt, optIps, optText, PYTHON, type Background, type Reply } from '../harness/dhcp-lab.ts';
import { lifecycleSuite } from '../harness/lifecycle-suite.ts';

const NET = '10.98.0';
const SITE = `${NET}.1`;
const SMELT = `${NET}.2`;
const MAC = '52:54:00:98:00:01';
const SCRIPT_URL = `http://${SMELT}/boot/${MAC.replaceAll(':', '-')}.ipxe`;

const life = createLifecycle({
  name: 'realboot-proxy',
  tags: { segment: 'xps', smeltd: 'xpd' },
  net: NET,
  dhcp: 'proxy',
  source: 'files',
  mac: MAC,
  note: (line) => {
    console.log(`[guest] ${line}`);
  },
});

let watcher: Background | undefined;

/** Every DHCP packet smeltd has sent so far, as the watcher on its interface saw it on the wire. */
function sentBySmeltd(): Reply[] {
  return (watcher?.output() ?? '')
    .split('\n')
    .filter((line) => line.startsWith('{"src"'))
    .map((line) => JSON.parse(line) as Reply)
    .filter((reply) => reply.src === SMELT);
}

/** smeltd's "dhcp" debug lines (one per request it handled, with its decision) for the VM. */
function decisions(): LogLine[] {
  return life.log().filter((line) => line.msg === 'dhcp' && line.mac === MAC);
}

/** The guest's lease as its console reported it. */
function guestLease(): string | undefined {
  return /SMELT-GUEST: lease (\S+)\/\d+ from/.exec(life.vm()?.serial() ?? '')?.[1];
}

lifecycleSuite(life, {
  // What smeltd's ProxyDHCP replies carried, on the wire. iPXE takes a ProxyDHCP offer or ACK only with PXE options
  // (src/net/udp/dhcp.c, dhcp_has_pxeopts: siaddr *and* a boot file name, or a PXE boot menu, 43.9); otherwise it
  // sends a ProxyDHCPREQUEST to port 4011 and ignores an ACK without them too, then boots without a boot file.
  diagnostics: () =>
    [
      '---- DHCP replies from smeltd on the wire ----',
      ...sentBySmeltd().map(
        (r) =>
          `${r.type ?? '?'} → ${r.dst}:${String(r.dport)} from port ${String(r.sport)}: yiaddr ${r.yiaddr} siaddr ${r.siaddr} ` +
          `file ${JSON.stringify(r.file)} 43=${opt(r, 43)?.toString('hex') ?? '-'} 60=${optText(r, 60) ?? '-'} ` +
          `67=${optText(r, 67) ?? '-'}`,
      ),
    ].join('\n'),
  name: 'proxy mode beside dnsmasq: address from dnsmasq, boot from smeltd → held → deploy → installed → local',
  after: {
    lab: [
      {
        title: 'a watcher where smeltd plugs into the bridge records every DHCP packet smeltd sends',
        async run() {
          const port = life.smeltdPort();
          assert.ok(port, "smeltd's bridge port");
          watcher = life.lab().spawn(life.segmentNs(), [PYTHON, DHCP_CLIENT, port, 'watch', '--seconds', '110']);
          await watcher.waitFor(/"watching"/, 10_000);
          assert.equal(life.dhcpServer, SITE, 'addresses come from dnsmasq');
          const listening = life.log().find((line) => line.msg === 'dhcp listening');
          assert.equal(listening?.mode, 'proxy', JSON.stringify(listening));
        },
      },
    ],
    held: [
      {
        title: "iPXE took its address from dnsmasq's offer and its script URL from smeltd's proxy offer",
        run() {
          // smeltd's answer to the VM's DISCOVER: an offer without an address; the REQUEST naming dnsmasq left alone.
          const offer = decisions().find((line) => line.type === 'discover');
          assert.equal(offer?.decision, 'reply', JSON.stringify(decisions()));
          assert.equal(offer.reply, 'offer');
          assert.equal(offer.yiaddr, '0.0.0.0');
          const request = decisions().find((line) => line.type === 'request');
          assert.equal(request?.decision, 'ignore: other-server', JSON.stringify(decisions()));
          // On the wire: the ProxyDHCP offer, naming the script and telling iPXE not to wait for more offers.
          const onWire = sentBySmeltd().find((reply) => reply.type === 'offer' && reply.chaddr === MAC);
          assert.ok(onWire, `the watcher saw no offer from smeltd:\n${watcher?.output() ?? ''}`);
          assert.equal(onWire.yiaddr, '0.0.0.0');
          assert.equal(onWire.file, SCRIPT_URL);
          assert.equal(optText(onWire, 60), 'PXEClient');
          assert.deepEqual(optIps(onWire, 54), [SMELT]);
          assert.equal(opt(onWire, 175)?.toString('hex'), 'b00101');
          // dnsmasq leased it an address in its range (its log: DHCPACK(br0) <address> <mac>).
          const acked = new RegExp(`DHCPACK\\(br0\\) (${NET.replaceAll('.', '\\.')}\\.\\d+) ${MAC}`).exec(
            life.dnsmasq()?.process.output() ?? '',
          );
          assert.ok(acked, `dnsmasq did not log a DHCPACK for ${MAC}:\n${life.dnsmasq()?.process.output() ?? ''}`);
        },
      },
    ],
    guest: [
      {
        title: "smeltd ignored the guest's own DHCP client (udhcpc, not a network boot)",
        run() {
          const ignored = decisions().filter((line) => line.decision === 'ignore: not-network-boot');
          assert.ok(ignored.length >= 2, `a DISCOVER and a REQUEST ignored: ${JSON.stringify(decisions())}`);
          assert.ok(ignored.every((line) => line.type === 'discover' || line.type === 'request'));
        },
      },
    ],
    local: [
      {
        title: "dnsmasq's lease file has the VM, at the address its guest reported",
        run() {
          const dnsmasq = life.dnsmasq();
          assert.ok(dnsmasq);
          // <expiry> <mac> <address> <hostname|*> <client id|*>, one line per lease.
          const leases = readFileSync(dnsmasq.leaseFile, 'utf8')
            .split('\n')
            .map((line) => line.split(' '))
            .filter((fields) => fields[1] === MAC);
          assert.equal(leases.length, 1, readFileSync(dnsmasq.leaseFile, 'utf8'));
          const address = leases[0]?.[2] ?? '';
          const last = Number(address.split('.')[3]);
          assert.ok(address.startsWith(`${NET}.`) && last >= 100 && last <= 149, address);
          assert.equal(address, guestLease());
          assert.equal(dnsmasq.process.child.exitCode, null, `dnsmasq exited:\n${dnsmasq.process.output()}`);
        },
      },
      {
        title: 'smeltd sent no address: every DHCP packet it put on the wire had yiaddr 0.0.0.0 and no lease time',
        run() {
          const sent = sentBySmeltd();
          // An offer for each of the two iPXE boots (power-on and after the guest's reboot), at least.
          const offers = sent.filter((reply) => reply.type === 'offer');
          assert.ok(offers.length >= 2, `offers seen: ${JSON.stringify(sent)}`);
          for (const reply of sent) {
            assert.equal(reply.yiaddr, '0.0.0.0', JSON.stringify(reply));
            assert.equal(opt(reply, 51), undefined, JSON.stringify(reply));
            assert.equal(opt(reply, 1), undefined, JSON.stringify(reply));
          }
          // And the daemon's own account of every reply it decided on agrees.
          const replies = life.log().filter((line) => line.msg === 'dhcp' && line.decision === 'reply');
          assert.ok(replies.length >= offers.length);
          for (const line of replies) assert.equal(line.yiaddr, '0.0.0.0', JSON.stringify(line));
          console.log(
            `    smeltd sent ${sent.length} DHCP packet(s): ${sent.map((r) => `${r.type ?? '?'} → ${r.dst}:${r.dport}`).join(', ')}`,
          );
        },
      },
    ],
  },
});
