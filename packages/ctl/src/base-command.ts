import { Command, Flags, type Interfaces } from '@oclif/core';
import type { Client } from './client.ts';
import { configFilePath, readConfigFile } from './config-file.ts';
import { defaultServer, resolveConnection, type Connection } from './connection.ts';
import { CliFailure, exitCodes } from './failure.ts';
import { formatDetails, formatList, outputFormats, type ListView, type OutputFormat } from './output.ts';
import type { Section } from './render/fields.ts';
import { detectTerminal } from './render/terminal.ts';

export type GlobalFlags = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags']>;

/** What every smeltctl command shares: where the server is, who we are, how to print, and how to fail. */
export abstract class BaseCommand extends Command {
  static override baseFlags = {
    server: Flags.string({
      description: `smeltd API URL [env: SMELT_SERVER, then the config file, then ${defaultServer}]`,
      helpGroup: 'GLOBAL',
    }),
    token: Flags.string({
      description: 'API token [env: SMELT_TOKEN, then the config file]',
      helpGroup: 'GLOBAL',
    }),
    output: Flags.option({
      char: 'o',
      options: outputFormats,
      description: 'table (the default; plain columns when not a terminal), wide, json or yaml',
      helpGroup: 'GLOBAL',
    })(),
  };

  protected async connection(flags: GlobalFlags): Promise<Connection> {
    const stored = await readConfigFile(configFilePath(process.env));
    return resolveConnection({ flags, env: process.env, stored });
  }

  protected async client(flags: GlobalFlags): Promise<Client> {
    const connection = await this.connection(flags);
    // got is the heaviest import (~0.1 s); loading it here keeps `--help` and usage errors fast.
    const { createClient } = await import('./client.ts');
    return createClient(connection, { userAgent: this.config.userAgent });
  }

  protected async printList<T>(view: ListView<T>, format: OutputFormat | undefined): Promise<void> {
    const { stdout, stderr } = await formatList(view, format, detectTerminal(process.stdout, process.env));
    if (stdout !== undefined) this.log(stdout);
    if (stderr !== undefined) this.logToStderr(stderr);
  }

  protected async printDetails(
    data: unknown,
    sections: () => Section[],
    format: OutputFormat | undefined,
  ): Promise<void> {
    this.log(await formatDetails(data, sections, format, detectTerminal(process.stdout, process.env)));
  }

  /** "boot "x" created", or the object itself for json/yaml so that a script can read what the server made. */
  protected async printChange(data: unknown, message: string, format: OutputFormat | undefined): Promise<void> {
    if (format === 'json' || format === 'yaml') await this.printDetails(data, () => [], format);
    else this.log(message);
  }

  /**
   * Every failure ends here: one "Error: ..." line (plus field errors) on stderr and the exit code of DESIGN.md §7,
   * never a stack trace (SMELT_DEBUG=1 shows one, for bugs). oclif's own usage errors carry their exit code (2).
   */
  protected override catch(error: Error & { oclif?: { exit?: number }; code?: string }): Promise<never> {
    if (error.code === 'EEXIT') throw error; // this.exit(): already decided, nothing to print
    const [first = String(error), ...more] = error.message
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
    const failure =
      error instanceof CliFailure
        ? error
        : new CliFailure(error.oclif?.exit ?? exitCodes.serverFailure, [first, ...more.map((line) => `  ${line}`)]);
    for (const line of failure.lines) this.logToStderr(line);
    if (process.env.SMELT_DEBUG && !(error instanceof CliFailure)) this.logToStderr(error.stack);
    this.exit(failure.exitCode);
  }
}
