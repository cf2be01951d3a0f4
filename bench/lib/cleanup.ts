/**
 * Everything a benchmark sets up (processes, namespaces, scratch directories) registers how to undo it here; the
 * undo steps run last-in first-out when the benchmark ends, throws, or is interrupted (SIGINT/SIGTERM/SIGHUP).
 */
type Undo = () => Promise<void> | void;

const undos: { what: string; undo: Undo }[] = [];
let running: Promise<void> | undefined;

/** Registers an undo step; the returned function runs it early (and removes it from the list). */
export function onCleanup(what: string, undo: Undo): () => Promise<void> {
  const entry = { what, undo };
  undos.push(entry);
  return async () => {
    const index = undos.indexOf(entry);
    if (index === -1) return;
    undos.splice(index, 1);
    await entry.undo();
  };
}

/** Runs every registered undo step, newest first; failures are reported and do not stop the others. */
export function cleanupAll(): Promise<void> {
  running ??= (async () => {
    while (undos.length > 0) {
      const entry = undos.pop();
      if (!entry) break;
      try {
        await entry.undo();
      } catch (error) {
        process.stderr.write(`bench: cleanup of ${entry.what} failed: ${String(error)}\n`);
      }
    }
    running = undefined;
  })();
  return running;
}

/** Cleans up on the signals a person or a CI runner sends, then exits with the conventional 128 + signal code. */
export function cleanupOnSignals(): void {
  const codes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  for (const [signal, code] of Object.entries(codes)) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}: cleaning up ...\n`);
      void cleanupAll().finally(() => process.exit(code));
    });
  }
}
