import { spawn, type ChildProcess } from 'node:child_process';
import { onCleanup } from './cleanup.ts';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds from spawn to exit. */
  ms: number;
  timedOut: boolean;
}

/**
 * Runs a command to completion in its own process group, bounded by timeoutMs: on expiry the whole group (the
 * command and anything it started) gets SIGKILL.
 */
export function run(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const stdin = options.input === undefined ? 'ignore' : 'pipe';
    const child = spawn(command, args, { detached: true, stdio: [stdin, 'pipe', 'pipe'], env: options.env });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started, timedOut });
    });
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // a command that exits without reading its input
      child.stdin.end(options.input);
    }
  });
}

/** Like run, but throws with the output when the command fails or times out. */
export async function runOk(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; input?: string } = {},
): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0 || result.timedOut) {
    const why = result.timedOut ? 'timed out' : `exited ${result.code ?? result.signal}`;
    throw new Error(`${command} ${args.join(' ')} ${why}: ${result.stderr}${result.stdout}`);
  }
  return result.stdout;
}

/** Sends a signal to a child's process group (it was spawned detached, so it leads one); ignores a gone group. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

export interface Service {
  name: string;
  pid: number;
  /** Everything it printed so far (stdout and stderr, interleaved), capped to the last 64 KiB. */
  output(): string;
  /** Whether it is still running. */
  alive(): boolean;
  /** SIGTERM to its process group, SIGKILL after 3 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Starts a long-running process (a server, a delay line) in its own process group and registers its stop with
 * the cleanup list, so that it and its children (tftpd-hpa forks one per transfer) never outlive the benchmark.
 */
export function startService(name: string, command: string, args: readonly string[]): Service {
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const pid = child.pid;
  let output = '';
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-65536);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  child.on('error', (error) => (output += `\nspawn error: ${error.message}\n`));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('close', () => {
      exited = true;
      resolve();
    }),
  );
  const stopNow = async () => {
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
    }, 3000);
    await exit;
    clearTimeout(timer);
    killGroup(child, 'SIGKILL'); // children the leader left behind (a transfer still in flight)
  };
  const unregister = onCleanup(`${name} (pid ${pid})`, () => stopNow());
  return {
    name,
    pid,
    output: () => output,
    alive: () => !exited,
    stop: unregister,
  };
}

/** Resolves once `predicate` holds, polling every intervalMs; rejects with `what` after timeoutMs. */
export async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000, intervalMs = 20) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
