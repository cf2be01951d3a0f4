import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Gives memory back once a burst of connections is over. Under a few hundred keep-alive connections V8 grows its old
 * space and glibc its malloc arenas (socket and parser state), and neither shrinks on its own while the daemon sits
 * idle: measured here, 256 connections on the script route grew it ~25 MiB and it kept that for minutes; this gives
 * back ~12 MiB of it (malloc_trim most of that, the GC ~1 MiB). So when the server has had no connection at all for
 * `quietMs` after a peak of at least `burst` at once, run one full, compacting collection and trim the heap. It never
 * runs while a connection is open, so it never pauses a client.
 */
export interface QuietReclaimOptions {
  /** Connections open at once that count as a burst worth reclaiming after. */
  readonly burst: number;
  /** How long the server must have had no connection open. */
  readonly quietMs: number;
  /** The reclaim itself (a full GC and malloc_trim in the daemon). */
  readonly reclaim: () => void;
}

export function reclaimWhenQuiet(server: Server, options: QuietReclaimOptions): { close(): void } {
  let open = 0;
  let peak = 0;
  let timer: NodeJS.Timeout | undefined;
  const onClose = (): void => {
    open -= 1;
    if (open > 0 || peak < options.burst) return;
    timer = setTimeout(() => {
      timer = undefined;
      peak = 0;
      options.reclaim();
    }, options.quietMs);
    timer.unref();
  };
  const onConnection = (socket: Socket): void => {
    open += 1;
    if (open > peak) peak = open;
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    socket.once('close', onClose);
  };
  server.on('connection', onConnection);
  return {
    close: () => {
      server.off('connection', onConnection);
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
