import { text } from 'node:stream/consumers';
import { BaseCommand } from '../base-command.ts';
import { configFilePath, writeConfigFile } from '../config-file.ts';
import { usageFailure } from '../failure.ts';

export default class Login extends BaseCommand {
  static override summary = 'Check a server URL and token against smeltd, then save them for later commands';
  static override description =
    'The file is $SMELTCTL_CONFIG, else $XDG_CONFIG_HOME/smelt/config.json ' +
    '(~/.config/smelt/config.json), mode 0600. ' +
    'Use --token - to read the token from stdin and keep it out of the shell history.';
  static override examples = [
    '<%= config.bin %> login --server http://10.0.0.2:7480 --token "$(ssh boot-host smeltd token)"',
    'ssh boot-host smeltd token | <%= config.bin %> login --server http://10.0.0.2:7480 --token -',
  ];

  async run(): Promise<void> {
    const { flags } = await this.parse(Login);
    const token = flags.token === '-' ? (await text(process.stdin)).trim() : flags.token;
    const connection = await this.connection({ ...flags, token });
    if (connection.token === undefined) {
      throw usageFailure('login needs a token: --token T (or --token - to read it from stdin)');
    }
    const client = await this.client({ ...flags, token });
    // An authenticated route, so that a wrong token fails here rather than at the next command.
    await client.call('index', {});
    const path = configFilePath(process.env);
    await writeConfigFile(path, { server: connection.server, token: connection.token });
    this.log(`Logged in to ${connection.server}; saved to ${path}`);
  }
}
