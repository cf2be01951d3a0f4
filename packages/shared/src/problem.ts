import { z } from 'zod';

/**
 * Every error the API returns has one of these codes. Each maps, in this one table, to its HTTP status and to
 * the exit code smeltctl ends with (DESIGN.md §7: 1 server-side failure, 2 usage, 3 not found, 4 conflict).
 */
export const problemCodes = {
  invalid_request: { status: 400, exitCode: 2, title: 'The request is not valid' },
  unauthorized: { status: 401, exitCode: 1, title: 'Missing or wrong API token' },
  forbidden: { status: 403, exitCode: 1, title: 'Wrong phone-home token' },
  not_found: { status: 404, exitCode: 3, title: 'No such resource' },
  method_not_allowed: { status: 405, exitCode: 2, title: 'Method not allowed on this path' },
  conflict: { status: 409, exitCode: 4, title: 'Conflicts with the current state' },
  payload_too_large: { status: 413, exitCode: 2, title: 'Request body too large' },
  unsupported_media_type: { status: 415, exitCode: 2, title: 'Request body must be application/json' },
  insufficient_storage: { status: 507, exitCode: 1, title: 'Not enough disk space on the daemon' },
  internal: { status: 500, exitCode: 1, title: 'Internal server error' },
  unavailable: { status: 503, exitCode: 1, title: 'Service unavailable' },
} as const satisfies Record<string, { status: number; exitCode: number; title: string }>;
export type ProblemCode = keyof typeof problemCodes;
export const problemCodeNames = Object.keys(problemCodes) as [ProblemCode, ...ProblemCode[]];

/** One thing that was wrong, and where: `in` is body, query, params or header; `path` is dotted (`dns.1`). */
export const fieldErrorSchema = z.object({
  in: z.enum(['body', 'query', 'params', 'header']),
  path: z.string(),
  message: z.string(),
});
export type FieldError = z.infer<typeof fieldErrorSchema>;

/** RFC 9457 problem details, with our stable `code` and the list of field errors. */
export const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  code: z.enum(problemCodeNames),
  detail: z.string(),
  instance: z.string().optional(),
  errors: z.array(fieldErrorSchema).optional(),
});
export type Problem = z.infer<typeof problemSchema>;

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemTypeUri(code: ProblemCode): string {
  return `urn:smelt:problem:${code}`;
}

/** Renders a zod error's issues as field errors with dotted paths, for problem+json and for CLI messages. */
export function fieldErrorsFromZod(error: z.ZodError, where: FieldError['in']): FieldError[] {
  return error.issues.map((issue) => ({
    in: where,
    path: issue.path.map(String).join('.'),
    // A bad record key (a label or var name) carries the useful message one level down.
    message: (issue.code === 'invalid_key' ? issue.issues[0]?.message : undefined) ?? issue.message,
  }));
}
