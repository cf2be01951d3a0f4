/**
 * Deploys the storm's machines on smeltd before they power on, through its API as an operator's script would: one
 * `POST /api/v1/boots` (a local kernel and initrd), then one `POST /api/v1/deployments` {"mac", "boot"} per MAC,
 * a few in flight. So each machine's iPXE script is the installer script with the kernel and initrd URLs, not the
 * hold script a free machine gets. Run inside the server namespace (the API listens on its loopback):
 *
 *     ip netns exec NS node bench/storm/deploy.ts --api URL --token-file FILE --boot JSON --macs FILE
 *
 * Prints one JSON line: {deployed, ms, errors}.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

export interface DeployResult {
  deployed: number;
  ms: number;
  errors: string[];
}

async function post(api: string, token: string, path: string, body: unknown): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await fetch(`${api}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      if (response.status === 201 || response.status === 200) return;
      throw new Error(`POST ${path} answered ${response.status}: ${text.slice(0, 300)}`);
    } catch (error) {
      if (attempt >= 3) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

async function cli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      api: { type: 'string' },
      'token-file': { type: 'string' },
      boot: { type: 'string' },
      macs: { type: 'string' },
      concurrency: { type: 'string', default: '8' },
    },
  });
  if (values.api === undefined || values['token-file'] === undefined || values.boot === undefined || !values.macs) {
    process.stderr.write('usage: node bench/storm/deploy.ts --api URL --token-file FILE --boot JSON --macs FILE\n');
    return 2;
  }
  const api = values.api;
  const token = readFileSync(values['token-file'], 'utf8').trim();
  const boot = JSON.parse(values.boot) as { name: string };
  const macs = readFileSync(values.macs, 'utf8').split('\n').filter(Boolean);
  const started = performance.now();
  const result: DeployResult = { deployed: 0, ms: 0, errors: [] };
  await post(api, token, '/api/v1/boots', boot);
  let next = 0;
  const worker = async () => {
    while (next < macs.length) {
      const mac = macs[next++] ?? '';
      try {
        await post(api, token, '/api/v1/deployments', { mac, boot: boot.name });
        result.deployed++;
      } catch (error) {
        if (result.errors.length < 5) result.errors.push(error instanceof Error ? error.message : String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Number(values.concurrency)) }, worker));
  result.ms = performance.now() - started;
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

if (import.meta.main) process.exitCode = await cli(process.argv.slice(2));
