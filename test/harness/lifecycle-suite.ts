/**
 * The steps of a boot-lifecycle.ts run as node:test tests, in order: each timed and printed as it passes, a
 * failure printing the diagnostics (serial console, firmware, dnsmasq and daemon log tails) and skipping the
 * later steps rather than leaving each to time out. A test file adds checks of its own after any step.
 */
import { after, describe, test } from 'node:test';
import type { Lifecycle, StepId } from './boot-lifecycle.ts';

export interface ExtraCheck {
  title: string;
  run(): Promise<void> | void;
}

export interface SuiteOptions {
  /** The describe() name. */
  name: string;
  /** Checks of the test file's own, run right after the step of that id. */
  after?: Partial<Record<StepId, ExtraCheck[]>>;
  /** More to print when a step fails, after the lifecycle's own diagnostics. */
  diagnostics?: () => string;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function lifecycleSuite(life: Lifecycle, options: SuiteOptions): void {
  const started = Date.now();
  /** Per step: when it happened (ms from power-on; 0 in the set-up) and how long the test spent on it. */
  const timings: { title: string; at: number; took: number }[] = [];
  let broken: string | undefined;

  const since = () => (life.poweredOnAt() === 0 ? 'set-up' : `+${seconds(Date.now() - life.poweredOnAt())}`);

  /** `at`: when the step's event happened per the daemon's log (else: when the test saw it). */
  function declare(title: string, body: () => Promise<{ summary?: string; at?: number }>): void {
    test(title, async (t) => {
      if (broken !== undefined) {
        t.skip(`skipped: "${broken}" failed`);
        return;
      }
      const begun = Date.now();
      let result: { summary?: string; at?: number };
      try {
        result = await body();
      } catch (error) {
        broken = title;
        const more = options.diagnostics?.() ?? '';
        console.log(`[${since()}] FAILED: ${title}\n${life.diagnostics()}${more === '' ? '' : `\n${more}`}`);
        throw error;
      }
      const took = Date.now() - begun;
      const on = life.poweredOnAt();
      const at = on === 0 ? 0 : (result.at ?? Date.now()) - on;
      timings.push({ title, at, took });
      const logged = result.at === undefined ? '' : `, per the daemon's log; checked by ${since()}`;
      const when = on === 0 ? 'set-up' : `+${seconds(at)}`;
      console.log(`[${when}] ${title}${logged}${result.summary === undefined ? '' : `\n    ${result.summary}`}`);
    });
  }

  after(async () => {
    await life.close();
    const lines = timings.map(
      (t) =>
        `  ${(t.at === 0 ? 'set-up' : `+${seconds(t.at)}`).padStart(8)}  (${seconds(t.took).padStart(6)})  ${t.title}`,
    );
    console.log(`timings (from power-on; step duration in brackets):\n${lines.join('\n')}`);
    console.log(`whole file: ${seconds(Date.now() - started)}`);
  });

  describe(options.name, { concurrency: 1 }, () => {
    for (const step of life.steps) {
      declare(step.title, () => step.run());
      for (const check of options.after?.[step.id] ?? []) {
        declare(check.title, async () => {
          await check.run();
          return {};
        });
      }
    }
  });
}
