/**
 * smeltd's composition root: the only place that reads argv, the environment, files under /etc and /proc and
 * signals, and picks implementations (DESIGN.md §4).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { stringify as toYaml } from 'yaml';
import { parseArgs, takeOptions, UsageError } from './argv.ts';
import { detectConfig, DetectError, type HostFacts } from './config/detect.ts';
import { ConfigError, resolveConfig, type ConfigLayers } from './config/load.ts';
import { configSchema, type Config } from './config/schema.ts';
import { startDaemon } from './daemon.ts';
import { DataDirBusyError, lockDataDir } from './data-dir-lock.ts';
import { ListenError } from './listen.ts';
import { createLogger } from './log.ts';
import { ensureToken } from './token.ts';

const DEFAULT_CONFIG_FILE = '/etc/smelt/smelt.yaml';
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

const HELP = `smeltd ${VERSION}: DHCP, TFTP, HTTP and the REST API for bare-metal provisioning, in one daemon.

Usage:
  smeltd [start] [--config FILE] [--SETTING VALUE ...]   run the daemon
  smeltd config detect [--interface IF] [--output yaml|json]
                                                        print a working config for an interface
  smeltd config show [--config FILE] [--SETTING VALUE ...]
                                                        print the effective config (after env and flags)
  smeltd token [--config FILE]                          print the API token (made on first use)
  smeltd --version | --help

Settings come from defaults < the config file < SMELT_* environment < flags. The config file is --config,
else $SMELT_CONFIG, else ${DEFAULT_CONFIG_FILE} if it exists; with none, the config is detected from the
default-route interface (or --interface), with DHCP in proxy mode so it never hands out addresses.
Every setting has an environment variable and a flag: dhcp.mode is SMELT_DHCP_MODE and --dhcp.mode.

Exit codes: 0 ok, 1 failed to run, 2 bad usage or configuration.`;

function hostFacts(): HostFacts {
  const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '');
  const links = existsSync('/sys/class/net') ? readdirSync('/sys/class/net') : [];
  return {
    interfaces: networkInterfaces(),
    links,
    routeTable: read('/proc/net/route'),
    resolvConf: read('/etc/resolv.conf'),
  };
}

function loadConfig(options: Record<string, string>): Config {
  const { config: flagPath } = takeOptions(options, ['config']);
  const path =
    flagPath ?? process.env.SMELT_CONFIG ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  const layers: ConfigLayers = { env: process.env, flags: options };
  if (path !== undefined) {
    if (!existsSync(path)) throw new ConfigError([`${path}: no such config file`]);
    layers.file = { path, text: readFileSync(path, 'utf8') };
  } else {
    const iface = options.interface ?? process.env.SMELT_INTERFACE;
    layers.detected = detectConfig(hostFacts(), iface);
  }
  return resolveConfig(layers);
}

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

async function run(argv: readonly string[]): Promise<number> {
  const { command, options, switches } = parseArgs(argv);
  if (switches.has('help')) return (print(HELP), 0);
  if (switches.has('version')) return (print(VERSION), 0);
  const verb = command.join(' ') || 'start';

  switch (verb) {
    case 'start': {
      const config = loadConfig(options);
      const log = createLogger(config.log.level);
      // Before anything reads the store: a second daemon on the same data directory stops here.
      const lock = lockDataDir(config.dataDir);
      try {
        const daemon = await startDaemon(config, log, VERSION);
        await new Promise<void>((resolve) => {
          const stop = (signal: NodeJS.Signals) => {
            log.info({ signal }, 'shutting down');
            process.off('SIGTERM', stop).off('SIGINT', stop);
            resolve();
          };
          process.on('SIGTERM', stop).on('SIGINT', stop);
        });
        await daemon.close();
        log.info('stopped');
        return 0;
      } finally {
        lock.release();
      }
    }
    case 'config detect': {
      const { interface: iface, output = 'yaml' } = takeOptions(options, ['interface', 'output']);
      const unknown = Object.keys(options);
      if (unknown.length > 0)
        throw new UsageError(`config detect takes --interface and --output, not --${unknown.join(', --')}`);
      if (output !== 'yaml' && output !== 'json')
        throw new UsageError(`--output must be yaml or json, not "${output}"`);
      const detected = detectConfig(hostFacts(), iface);
      // Validate before printing, so what is printed is known to load.
      configSchema.parse(detected);
      if (output === 'json') print(JSON.stringify(detected, null, 2));
      else
        print(
          `# smeltd config detect, interface ${detected.interface ?? ''}: DHCP in proxy mode, change dhcp.mode to "server" to hand out addresses\n${toYaml(detected)}`,
        );
      return 0;
    }
    case 'config show': {
      const { output = 'yaml' } = takeOptions(options, ['output']);
      const config = loadConfig(options);
      print(output === 'json' ? JSON.stringify(config, null, 2) : toYaml(config));
      return 0;
    }
    case 'token': {
      const config = loadConfig(options);
      print(ensureToken(config.dataDir).token);
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${verb}"; commands: start, config detect, config show, token`);
  }
}

try {
  process.exitCode = await run(process.argv.slice(2));
} catch (error) {
  if (error instanceof ConfigError) {
    // One problem (a mistyped flag, a missing file) is one line; several are listed one per line.
    const [only, ...more] = error.problems;
    process.stderr.write(
      `smeltd: ${only !== undefined && more.length === 0 ? `invalid configuration: ${only}` : error.message}\n`,
    );
    process.exitCode = 2;
  } else if (error instanceof UsageError || error instanceof DetectError) {
    process.stderr.write(
      `smeltd: ${error.message}\n${error instanceof UsageError ? 'Run smeltd --help for usage.\n' : ''}`,
    );
    process.exitCode = 2;
  } else if (error instanceof ListenError || error instanceof DataDirBusyError) {
    process.stderr.write(`smeltd: ${error.message}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`smeltd: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}
