/**
 * Running the build tools these scripts drive (apt-get, dpkg, depmod, cpio, ldd): to completion, bounded in time,
 * with their output captured for the error message. A small copy of test/harness/process.ts's run/runOk, so that
 * scripts/lib (used by the product's set-up) does not depend on the test harness.
 */
import { spawn, type SpawnOptions } from 'node:child_process';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export type RunOptions = Pick<SpawnOptions, 'cwd' | 'env'> & { timeoutMs?: number };

/** Runs a command to completion (killed after timeoutMs, default 60 s), capturing its output. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...(options.cwd !== undefined && { cwd: options.cwd }),
      ...(options.env !== undefined && { env: options.env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish in ${String(timeoutMs)} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Like run, but throws with the output when the exit code is not 0; resolves with stdout. */
export async function runOk(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited ${String(result.code ?? result.signal)}: ${result.stderr}${result.stdout}`,
    );
  }
  return result.stdout;
}
