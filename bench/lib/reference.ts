/**
 * The reference servers the boot benches compare smeltd with: dnsmasq (DHCP + TFTP) and nginx (HTTP), each in the
 * foreground inside a namespace, started together and ready once 67/udp, 69/udp and 80/tcp are bound.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Netns } from './netns.ts';
import { run, type Service } from './process.ts';

/** Whether something in the namespace listens on `port` (UDP, or TCP with tcp = true). */
async function listening(ns: Netns, port: number, tcp: boolean): Promise<boolean> {
  const { stdout } = await run('ip', ['netns', 'exec', ns.name, 'ss', '-Hn', tcp ? '-tl' : '-ul', `sport = :${port}`]);
  return stdout.trim() !== '';
}

/** Waits until every [port, tcp] is bound in the namespace; throws if a service exits first or time runs out. */
export async function waitListening(
  services: Service[],
  ns: Netns,
  ports: [number, boolean][],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = services.find((service) => !service.alive());
    if (dead) {
      const said = dead.output().trim().split('\n').slice(-5).join(' / ').slice(-800);
      throw new Error(`${dead.name} exited before it was serving: ${said || 'no output'}`);
    }
    let all = true;
    for (const [port, tcp] of ports) if (!(await listening(ns, port, tcp))) all = false;
    if (all) return;
    if (Date.now() > deadline) throw new Error(`not serving within ${timeoutMs / 1000} s (ports ${ports.join(' ')})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface RunningReference {
  dnsmasq: Service;
  nginx: Service;
  /** The command lines, as started (before any namespace or CPU wrapping). */
  dnsmasqArgs: string[];
  nginxArgs: string[];
  stop: () => Promise<void>;
}

/**
 * Writes `nginxConfig` to DIR/nginx.conf (error log DIR/error.log) and starts dnsmasq and nginx with `launch`
 * (which wraps them for the namespace and names their logs); both stopped again if they do not come up in 15 s.
 */
export async function startDnsmasqNginx(o: {
  dir: string;
  ns: Netns;
  nginxConfig: string;
  dnsmasqArgs: string[];
  launch: (name: string, argv: readonly string[]) => Service;
}): Promise<RunningReference> {
  mkdirSync(o.dir, { recursive: true });
  const configPath = join(o.dir, 'nginx.conf');
  writeFileSync(configPath, o.nginxConfig);
  const nginxArgs = ['nginx', '-p', o.dir, '-e', join(o.dir, 'error.log'), '-c', configPath, '-g', 'daemon off;'];
  const dnsmasq = o.launch('dnsmasq', o.dnsmasqArgs);
  const nginx = o.launch('nginx', nginxArgs);
  const stop = async () => {
    await nginx.stop();
    await dnsmasq.stop();
  };
  try {
    const ports: [number, boolean][] = [
      [67, false],
      [69, false],
      [80, true],
    ];
    await waitListening([dnsmasq, nginx], o.ns, ports, 15_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { dnsmasq, nginx, dnsmasqArgs: o.dnsmasqArgs, nginxArgs, stop };
}
