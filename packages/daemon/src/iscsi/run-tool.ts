import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Runs an external tool (qemu-img, qemu-storage-daemon, tgtadm, umount); its stdout, or an error with its stderr. */
export async function runTool(command: string, args: readonly string[], what = command): Promise<string> {
  try {
    return (await execFileAsync(command, args)).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    const reason = stderr !== undefined && stderr !== '' ? stderr : (error as Error).message;
    throw new Error(`${what}: ${reason}`, { cause: error });
  }
}
