import type { z } from 'zod';
import { usageFailure } from '../failure.ts';

/** zod says only "Invalid key in record" for a bad `--var`/`--label` key; the key and the reason are inside. */
function messageOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key') {
    const key = String(issue.path.at(-1) ?? '');
    return `"${key}": ${issue.issues[0]?.message ?? issue.message}`;
  }
  return issue.message;
}

/**
 * Checks what the flags add up to against the shared schema before anything is sent, and names the flag, not the
 * JSON field, in the message (`--MAC: "nonsense" is not a MAC address ...`): one line per wrong value, exit 2.
 * `flagFor` maps a field to its flag where the two are spelled differently.
 */
export function validateFlags<S extends z.ZodType>(
  schema: S,
  value: unknown,
  flagFor: Readonly<Record<string, string>> = {},
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const field = String(issue.path[0] ?? '');
    const flag = flagFor[field] ?? field;
    return flag ? `--${flag}: ${messageOf(issue)}` : messageOf(issue);
  });
  const [first = 'the flags do not make a valid request', ...rest] = [...new Set(lines)];
  throw usageFailure(first, ...rest.map((line) => `  ${line}`));
}
