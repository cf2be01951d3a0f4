/**
 * A node:test reporter that fails the run when any test was skipped, beside the spec reporter (package.json
 * `test`). node:test counts a skipped test as passed and exits 0; here a skip means a dependency the set-up should
 * have installed is missing (a test that needs root, a namespace or a Debian tool runs, it is not skipped), so the
 * run is red and says which tests and why.
 */
import type { TestEvent } from 'node:test/reporters';

export default async function* noSkips(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const skipped: string[] = [];
  for await (const event of source) {
    if (event.type !== 'test:pass' || event.data.skip === undefined) continue;
    const why = typeof event.data.skip === 'string' ? `: ${event.data.skip}` : '';
    skipped.push(`  ${event.data.name}${why} (${event.data.file ?? 'unknown file'})`);
  }
  if (skipped.length === 0) return;
  process.exitCode = 1;
  yield `\n${String(skipped.length)} test(s) skipped; a skip fails the suite (scripts/no-skips-reporter.ts):\n`;
  yield `${skipped.join('\n')}\n`;
}
