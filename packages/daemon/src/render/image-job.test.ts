import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderImageJob } from './image-job.ts';

const hooks = {
  installed: 'http://10.0.0.2/hooks/52-54-00-12-34-56/tok/installed',
  failed: 'http://10.0.0.2/hooks/52-54-00-12-34-56/tok/failed',
  progress: 'http://10.0.0.2/hooks/52-54-00-12-34-56/tok/progress',
};

test('the job is valid POSIX sh and every value is one quoted word', () => {
  const job = renderImageJob({
    mac: '52:54:00:12:34:56',
    imageUrl: "http://mirror.example/it's $(reboot) `id`.img.gz",
    sha256: 'a'.repeat(64),
    disk: '/dev/nvme0n1',
    hooks,
  });
  assert.match(job, /^url='http:\/\/mirror\.example\/it'\\''s \$\(reboot\) `id`\.img\.gz'$/m);
  assert.match(job, /^disk=\/dev\/nvme0n1$/m);
  assert.match(job, /^expected=a{64}$/m);
  const dir = mkdtempSync(join(tmpdir(), 'smelt-job-'));
  try {
    writeFileSync(join(dir, 'job.sh'), job);
    for (const shell of ['dash', 'bash']) execFileSync(shell, ['-n', join(dir, 'job.sh')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without a disk or a checksum, the job finds the first disk and skips the check', () => {
  const job = renderImageJob({ mac: '52:54:00:12:34:56', imageUrl: 'http://x/y.img', hooks });
  assert.match(job, /^disk=''$/m);
  assert.match(job, /^expected=''$/m);
  assert.match(job, /case "\$name" in loop\*\|ram\*\|sr\*\|fd\*\|zram\*\|nbd\*\|md\*\|dm-\*/);
  assert.match(job, /^grow=0$/m);
  assert.match(
    renderImageJob({ mac: '52:54:00:12:34:56', imageUrl: 'http://x/y.img.xz?sig=1', grow: true, hooks }),
    /^grow=1$/m,
  );
});
