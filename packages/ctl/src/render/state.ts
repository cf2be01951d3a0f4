import type { ChalkInstance } from 'chalk';

/** Lifecycle states at a glance: green is done, yellow is in progress, red needs a person. */
export function styleState(state: string, chalk: ChalkInstance): string {
  switch (state) {
    case 'deployed':
    case 'running':
      return chalk.green(state);
    case 'provisioning':
    case 'wiping':
      return chalk.yellow(state);
    case 'failed':
      return chalk.red(state);
    default:
      return state;
  }
}
