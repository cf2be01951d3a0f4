import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { usageFailure } from '../failure.ts';

const KEY_PREFIX = /^(ssh|ecdsa|sk)-/;

/** `--sshKey=~/.ssh/id.pub` reaches us unexpanded (the shell expands ~ only at the start of a word). */
function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? `${homedir()}${path.slice(1)}` : path;
}

/**
 * The public keys in each `--sshKey FILE`: one per non-blank, non-comment line, as in authorized_keys. A value
 * that is not a file but looks like a key is taken as the key itself, which is what someone pasting one means.
 */
export async function readSshKeys(files: readonly string[] | undefined): Promise<string[] | undefined> {
  if (files === undefined) return undefined;
  const keys: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(expandHome(file), 'utf8');
    } catch (error) {
      if (KEY_PREFIX.test(file)) {
        keys.push(file.trim());
        continue;
      }
      throw usageFailure(`--sshKey: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    const found = text
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    if (found.length === 0) throw usageFailure(`--sshKey: ${file} holds no public key`);
    keys.push(...found);
  }
  return keys;
}
