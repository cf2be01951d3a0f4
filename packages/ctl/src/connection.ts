import { usageFailure } from './failure.ts';

/** DESIGN.md §9: where smeltd's API listens when nothing says otherwise. */
export const defaultServer = 'http://127.0.0.1:7480';

export interface StoredSettings {
  server?: string | undefined;
  token?: string | undefined;
}

export type SettingSource = 'flag' | 'env' | 'config' | 'default' | 'none';

export interface Connection {
  /** Normalised: scheme, host, port and any path prefix, without a trailing slash. */
  server: string;
  token: string | undefined;
  serverSource: SettingSource;
  tokenSource: SettingSource;
}

export interface ConnectionInputs {
  flags: StoredSettings;
  env: Readonly<Record<string, string | undefined>>;
  /** What `smeltctl login` stored; {} when there is no config file. */
  stored: StoredSettings;
}

/** "10.0.0.2:7480" and "http://10.0.0.2:7480/" both mean http://10.0.0.2:7480; anything but http(s) is a usage error. */
export function normalizeServerUrl(text: string): string {
  const trimmed = text.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw usageFailure(`"${text}" is not a server URL (e.g. http://10.0.0.2:7480)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageFailure(`"${text}" is not an http:// or https:// server URL`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw usageFailure(`"${text}": give the server URL without credentials, query or fragment (use --token)`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** The first candidate that has a (non-blank) value, with where it came from. */
function firstSet(candidates: readonly (readonly [string | undefined, SettingSource])[]): {
  value: string | undefined;
  source: SettingSource;
} {
  for (const [value, source] of candidates) {
    if (nonEmpty(value) !== undefined) return { value: nonEmpty(value), source };
  }
  return { value: undefined, source: 'none' };
}

/**
 * Precedence, per setting: flag > SMELT_SERVER/SMELT_TOKEN > config file > default. The stored token is only used
 * when the server resolved to the one it was stored for: `--server other` must not send our token to another host.
 */
export function resolveConnection({ flags, env, stored }: ConnectionInputs): Connection {
  const server = firstSet([
    [flags.server, 'flag'],
    [env.SMELT_SERVER, 'env'],
    [stored.server, 'config'],
    [defaultServer, 'default'],
  ]);
  const serverUrl = normalizeServerUrl(server.value ?? defaultServer);
  const storedFor = normalizeServerUrl(nonEmpty(stored.server) ?? defaultServer);
  const token = firstSet([
    [flags.token, 'flag'],
    [env.SMELT_TOKEN, 'env'],
    [storedFor === serverUrl ? stored.token : undefined, 'config'],
  ]);
  return { server: serverUrl, token: token.value, serverSource: server.source, tokenSource: token.source };
}
