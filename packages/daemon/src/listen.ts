import type { Server } from 'node:http';
import { splitListen } from './config/schema.ts';

/** A server could not start listening; the message is one line naming the port and what to do. */
export class ListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListenError';
  }
}

/** Why a bind of `port` failed, in words that say what to do; shared by every server that listens. */
export function explainBindError(code: string | undefined, port: number): string {
  switch (code) {
    case 'EADDRINUSE':
      return 'the port is in use by another program';
    case 'EACCES':
      return port < 1024 ? `permission denied: port ${port} needs root or CAP_NET_BIND_SERVICE` : 'permission denied';
    case 'EADDRNOTAVAIL':
      return 'that address is not on this host';
    default:
      return code ?? 'unknown error';
  }
}

/**
 * The ListenError for a failed bind of `listen` (HOST:PORT) by `what` ("API", "TFTP server"); an error that is
 * not a bind failure (no errno code) is passed through unchanged.
 */
export function listenError(listen: string, what: string, error: unknown): unknown {
  if (error instanceof ListenError) return error;
  const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  if (code === undefined) return error;
  return new ListenError(
    `cannot listen on ${listen} for the ${what}: ${explainBindError(code, splitListen(listen).port)}`,
  );
}

/** Listens on HOST:PORT and resolves to the address actually bound (port 0 picks a free port). */
export function listenHttp(server: Server, listen: string, what: string): Promise<{ host: string; port: number }> {
  const { host, port } = splitListen(listen);
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(new ListenError(`cannot listen on ${listen} for the ${what}: ${explainBindError(error.code, port)}`));
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address ? { host: address.address, port: address.port } : { host, port });
    });
  });
}
