import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { StoredSettings } from './connection.ts';
import { usageFailure } from './failure.ts';

/**
 * SMELTCTL_CONFIG names the file outright; otherwise the XDG location, ~/.config/smelt/config.json.
 * (SMELT_CONFIG is smeltd's config file, so smeltctl leaves it alone: one host often runs both.)
 */
export function configFilePath(env: Readonly<Record<string, string | undefined>>): string {
  if (env.SMELTCTL_CONFIG) return env.SMELTCTL_CONFIG;
  const base = env.XDG_CONFIG_HOME?.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'smelt', 'config.json');
}

function isStoredSettings(value: unknown): value is StoredSettings {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { server, token } = value as Record<string, unknown>;
  return (server === undefined || typeof server === 'string') && (token === undefined || typeof token === 'string');
}

/** A missing file is no settings; a file we cannot make sense of is the operator's to fix, so it is named. */
export async function readConfigFile(path: string): Promise<StoredSettings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw usageFailure(`cannot read the config file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw usageFailure(`the config file ${path} is not JSON; fix it or run smeltctl login again`);
  }
  if (!isStoredSettings(parsed)) {
    throw usageFailure(`the config file ${path} should hold {"server": "...", "token": "..."}`);
  }
  return { server: parsed.server, token: parsed.token };
}

/**
 * The file holds a bearer token, so it is created 0600 (and its directory 0700) before the token is written, and
 * replaced by rename so that a crash never leaves half a file.
 */
export async function writeConfigFile(path: string, settings: StoredSettings): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  await rm(temporary, { force: true });
  await writeFile(temporary, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
  // writeFile's mode is filtered by the umask and ignored for an existing file; chmod makes it exact.
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}
