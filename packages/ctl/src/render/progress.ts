/**
 * A one-line progress report for long work on a terminal (DESIGN.md §7): what, bytes done of total, percent,
 * rate and time left, redrawn in place on stderr. Off a terminal it prints nothing (scripts read stdout).
 */
export interface Progress {
  update(done: number): void;
  finish(): void;
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** "1.2 GiB/4.0 GiB  30%  412 MiB/s  ETA 7s" for `done` of `total` after `seconds`. */
export function progressLine(what: string, done: number, total: number, seconds: number): string {
  const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
  const rate = seconds > 0 ? done / seconds : 0;
  const eta = rate > 0 ? Math.ceil((total - done) / rate) : undefined;
  return `${what}  ${mib(done)}/${mib(total)}  ${String(percent)}%  ${mib(rate)}/s  ETA ${eta === undefined ? '?' : `${String(eta)}s`}`;
}

export function createProgress(
  what: string,
  total: number,
  stream: { isTTY?: boolean | undefined; write(text: string): boolean },
): Progress {
  const started = performance.now();
  // The first update always draws: performance.now() counts from the process's start, so `last = 0` kept a bar
  // begun in the first 100 ms of smeltctl (and of its test) from drawing at all until then.
  let last = Number.NEGATIVE_INFINITY;
  const draw = (done: number) => {
    stream.write(`\r\x1b[K${progressLine(what, done, total, (performance.now() - started) / 1000)}`);
  };
  return {
    update(done) {
      // At most ten redraws a second.
      if (stream.isTTY !== true || performance.now() - last < 100) return;
      last = performance.now();
      draw(done);
    },
    finish() {
      if (stream.isTTY !== true) return;
      draw(total);
      stream.write('\n');
    },
  };
}
