/**
 * Ways to stream a file over node:http, side by side — evidence for where smeltd's big-file time and memory go (see
 * BENCHMARKS.md, HTTP). Each variant is a minimal server in a child process serving FILE whole; curl downloads it
 * (1 client, median of 3; then 10 at once) on loopback while the server's VmRSS is sampled.
 *
 *   node bench/http/variants.ts [FILE]     (default: the bench's cached 300 MiB payload)
 *
 * - fresh:   Buffer.allocUnsafe(256 KiB) per chunk + FileHandle.read + write/drain (what send-file.ts does)
 * - fresh1m: the same with 1 MiB chunks
 * - reuse:   two 256 KiB buffers per response, alternating; one is refilled only once its write has completed
 * - stream:  fs.createReadStream(path, { highWaterMark: 256 KiB }).pipe(response)
 */
import { spawn } from 'node:child_process';
import { createReadStream, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../lib/process.ts';
import { median, MiB } from '../lib/stats.ts';
import { rssBytes } from './rss.ts';

const variants = ['fresh', 'fresh1m', 'reuse', 'stream'] as const;
type Variant = (typeof variants)[number];
const KiB256 = 256 * 1024;

function drain(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => response.once('drain', resolve));
}

async function serve(variant: Variant, port: number, path: string): Promise<void> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  const server = createServer((request, response) => {
    response.setHeader('Content-Length', String(size));
    if (variant === 'stream') {
      createReadStream(path, { highWaterMark: KiB256 }).pipe(response);
      return;
    }
    void (async () => {
      if (variant === 'reuse') {
        const buffers = [Buffer.allocUnsafe(KiB256), Buffer.allocUnsafe(KiB256)];
        const written: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
        for (let at = 0, i = 0; at < size; i ^= 1) {
          await written[i];
          const buffer = buffers[i] ?? Buffer.allocUnsafe(KiB256);
          const { bytesRead } = await handle.read(buffer, 0, Math.min(KiB256, size - at), at);
          at += bytesRead;
          written[i] = new Promise((resolve) =>
            response.write(buffer.subarray(0, bytesRead), () => {
              resolve();
            }),
          );
          if (response.writableNeedDrain) await drain(response);
        }
        await Promise.all(written);
      } else {
        const chunk = variant === 'fresh1m' ? MiB : KiB256;
        for (let at = 0; at < size;) {
          const buffer = Buffer.allocUnsafe(Math.min(chunk, size - at));
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
          at += bytesRead;
          if (!response.write(buffer.subarray(0, bytesRead))) await drain(response);
        }
      }
      response.end();
    })();
    request.resume();
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
}

async function measure(file: string): Promise<void> {
  const size = statSync(file).size;
  await run('bash', ['-c', `cat '${file}' > /dev/null`], { timeoutMs: 120_000 });
  const port = 18_900;
  const url = `http://127.0.0.1:${port}/`;
  process.stdout.write(`${(size / MiB).toFixed(0)} MiB file, loopback, curl -o /dev/null\n`);
  for (const variant of variants) {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', variant, String(port), file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) =>
      child.stdout.once('data', () => {
        resolve();
      }),
    );
    const pid = child.pid ?? 0;
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 100);
    const curl = ['-s', '-o', '/dev/null', '-w', '%{speed_download}\n', url];
    await run('curl', curl); // warm-up
    const one: number[] = [];
    for (let i = 0; i < 3; i++) one.push(Number((await run('curl', curl)).stdout) / MiB);
    const ten = await run('bash', ['-c', `for i in $(seq 10); do curl -s -o /dev/null '${url}' & done; wait`], {
      timeoutMs: 300_000,
    });
    clearInterval(timer);
    child.kill();
    const line = `${variant.padEnd(8)} 1 client ${median(one).toFixed(0).padStart(5)} MiB/s   10 clients ${((10 * size) / MiB / (ten.ms / 1000)).toFixed(0).padStart(5)} MiB/s   peak RSS ${(peak / MiB).toFixed(0)} MiB\n`;
    process.stdout.write(line);
  }
}

const args = process.argv.slice(2);
if (args[0] === '--serve') {
  const [, variant = 'fresh', port = '0', path = ''] = args;
  await serve(variant as Variant, Number(port), path);
} else {
  const cache = process.env.SMELT_BENCH_CACHE ?? join(tmpdir(), 'smelt-bench-cache');
  await measure(args[0] ?? join(cache, 'http-300MiB.bin'));
}
