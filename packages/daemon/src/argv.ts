/** smeltd's command line: command words first, then `--key value` or `--key=value` options. */
export interface ParsedArgs {
  command: string[];
  options: Record<string, string>;
  switches: Set<string>;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Options that take no value. Everything else takes exactly one. */
const SWITCHES = new Set(['help', 'version']);

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const command: string[] = [];
  const options: Record<string, string> = {};
  const switches = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-h') {
      switches.add('help');
    } else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      if (name === '') throw new UsageError(`"${arg}" is not an option`);
      if (SWITCHES.has(name)) {
        switches.add(name);
        continue;
      }
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      if (Object.hasOwn(options, name)) throw new UsageError(`--${name} is given twice`);
      options[name] = value;
    } else if (Object.keys(options).length === 0) {
      command.push(arg);
    } else {
      throw new UsageError(`unexpected "${arg}" after the options`);
    }
  }
  return { command, options, switches };
}

/** Removes and returns the named options that are not config settings (such as --config, --output). */
export function takeOptions<K extends string>(
  options: Record<string, string>,
  names: readonly K[],
): Partial<Record<K, string>> {
  const taken: Partial<Record<K, string>> = {};
  for (const name of names) {
    const value = options[name];
    if (value !== undefined) {
      taken[name] = value;
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- a named option is consumed once
      delete options[name];
    }
  }
  return taken;
}
