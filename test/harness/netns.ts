import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { runOk } from './process.ts';

/** A network namespace this test made, with the means to run commands in it and remove it again. */
export interface Netns {
  name: string;
  exec(args: readonly string[]): Promise<string>;
  /** Writes /etc/netns/NAME/resolv.conf, which `ip netns exec` bind-mounts over /etc/resolv.conf. */
  setResolvConf(text: string): void;
  remove(): Promise<void>;
}

/** Names are unique per process so parallel test files and leftover namespaces never collide. */
export function uniqueName(tag: string): string {
  return `smelt-${tag}-${process.pid}`.slice(0, 15);
}

export async function createNetns(tag: string): Promise<Netns> {
  const name = uniqueName(tag);
  await runOk('ip', ['netns', 'add', name]);
  await runOk('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return {
    name,
    exec: (args) => runOk('ip', ['netns', 'exec', name, ...args]),
    setResolvConf(text) {
      mkdirSync(`/etc/netns/${name}`, { recursive: true });
      writeFileSync(`/etc/netns/${name}/resolv.conf`, text);
    },
    async remove() {
      rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
      await runOk('ip', ['netns', 'delete', name]);
    },
  };
}
