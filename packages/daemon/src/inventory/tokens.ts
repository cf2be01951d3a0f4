import { randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/**
 * A deployment's phone-home token: 32 random bytes, base64url. It is in the URLs of that machine's answer files
 * and scripts (DESIGN.md §6: the only secret on the machine-facing side), kept apart from the deployment so the
 * API never shows it, and replaced on reinstall so an old installer cannot report for a new one.
 */
export const tokenSchema = z.strictObject({ token: z.string().min(16), issuedAt: z.string() });
export type DeploymentToken = z.infer<typeof tokenSchema>;

export function newToken(issuedAt: string): DeploymentToken {
  return { token: randomBytes(32).toString('base64url'), issuedAt };
}

/** Compares in constant time, so the response time says nothing about how much of a guess was right. */
export function tokenMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
