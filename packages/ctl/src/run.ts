import { execute, settings } from '@oclif/core';

// oclif "auto-transpiles" TypeScript by registering tsx or ts-node when NODE_ENV is "development" or "test"
// (lib/config/ts-path.js). Node 24 strips types itself, so that must never happen: with auto-transpile off, oclif
// imports ./src/commands.ts as it is, whatever NODE_ENV says. Not passing `development: true` to execute() keeps
// it from setting NODE_ENV=development and turning on debug output.
settings.enableAutoTranspile = false;

// `smeltctl get machines | head -1` closes the pipe early; that is the reader's choice, not an error to report
// with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

await execute({ dir: import.meta.url });
