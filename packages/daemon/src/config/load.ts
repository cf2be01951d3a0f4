import { parse as parseYaml, YAMLParseError } from 'yaml';
import { configKeys, configSchema, envNameOf, type Config, type ConfigKey } from './schema.ts';

/** Every problem with a configuration, each as `path: what is wrong`, so they can all be fixed in one go. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface ConfigLayers {
  /** The config file's text and path, or else a detected configuration (see detect.ts). */
  file?: { path: string; text: string };
  detected?: Record<string, unknown>;
  env: Readonly<Record<string, string | undefined>>;
  /** `--dhcp.mode server` as { 'dhcp.mode': 'server' }. */
  flags: Readonly<Record<string, string>>;
}

/** Defaults < file (or detected) < SMELT_* environment < flags; then one validation over the result. */
export function resolveConfig(layers: ConfigLayers): Config {
  const problems: string[] = [];
  const base = layers.file ? parseConfigFile(layers.file, problems) : structuredClone(layers.detected ?? {});
  for (const key of Object.keys(configKeys) as ConfigKey[]) {
    const fromEnv = layers.env[envNameOf(key)];
    if (fromEnv !== undefined && fromEnv !== '') setPath(base, key, coerce(key, fromEnv));
  }
  for (const [flag, value] of Object.entries(layers.flags)) {
    if (Object.hasOwn(configKeys, flag)) setPath(base, flag, coerce(flag as ConfigKey, value));
    else problems.push(`--${flag}: not a setting (settings: ${Object.keys(configKeys).join(', ')})`);
  }
  const parsed = configSchema.safeParse(base);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.map(String);
      if (issue.code === 'unrecognized_keys') {
        // Reported under each key's own path, so `api.port` points at the line to fix.
        for (const key of issue.keys) problems.push(`${[...path, key].join('.')}: not a setting`);
      } else {
        problems.push(`${path.join('.') || '(top level)'}: ${issue.message}`);
      }
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return parsed.data;
}

function parseConfigFile(file: { path: string; text: string }, problems: string[]): Record<string, unknown> {
  try {
    const value: unknown = parseYaml(file.text);
    if (value === null || value === undefined) return {};
    if (typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
    problems.push(`${file.path}: the top level must be a mapping of settings`);
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos ? ` line ${error.linePos[0].line}` : '';
    problems.push(`${file.path}${where}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
  }
  return {};
}

function coerce(key: ConfigKey, text: string): unknown {
  switch (configKeys[key]) {
    case 'number':
      // Left as text when it is not a number, so that validation reports it against the key.
      return /^-?[0-9]+(\.[0-9]+)?$/.test(text.trim()) ? Number(text) : text;
    case 'list':
      return text
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
    case 'boolean': {
      // Left as text when it is none of these, so that validation reports it against the key.
      const word = text.trim().toLowerCase();
      if (['true', 'yes', 'on', '1'].includes(word)) return true;
      if (['false', 'no', 'off', '0'].includes(word)) return false;
      return text;
    }
    case 'string':
      return text;
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  const last = parts.pop() ?? path;
  let node = target;
  for (const part of parts) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[last] = value;
}
