import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { onCleanup } from './cleanup.ts';
import { killGroup, type Service } from './process.ts';

/** The last `bytes` of a file ('' when it cannot be read). */
export function tailOf(path: string, bytes = 65536): string {
  try {
    const size = statSync(path).size;
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, buffer, 0, length, size - length);
    } finally {
      closeSync(fd);
    }
    return buffer.toString('utf8');
  } catch {
    return '';
  }
}

/**
 * Like startService (bench/lib/process.ts), but everything the process prints goes straight to `logPath` (its own
 * file descriptor: nothing passes through this process, and nothing is lost to a buffer cap), so that a server's
 * complaints under load can be counted afterwards. output() is the log's last 64 KiB.
 */
export function startLoggedService(name: string, command: string, args: readonly string[], logPath: string): Service {
  const fd = openSync(logPath, 'a', 0o644);
  const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const pid = child.pid;
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('close', () => {
      exited = true;
      resolve();
    }),
  );
  child.on('error', () => undefined);
  const stopNow = async () => {
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
    }, 3000);
    await exit;
    clearTimeout(timer);
    killGroup(child, 'SIGKILL');
  };
  const unregister = onCleanup(`${name} (pid ${pid})`, () => stopNow());
  return { name, pid, output: () => tailOf(logPath), alive: () => !exited, stop: unregister };
}
