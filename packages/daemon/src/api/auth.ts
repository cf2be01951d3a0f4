import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import { SmeltError } from '../errors.ts';

/** Checks `Authorization: Bearer <token>` in constant time (hashing first makes the lengths equal). */
export function createTokenCheck(token: string): (ctx: Context) => void {
  const expected = createHash('sha256').update(token).digest();
  return (ctx) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(ctx.get('authorization'));
    if (!match?.[1]) {
      throw new SmeltError(
        'unauthorized',
        'send the API token as "Authorization: Bearer <token>" (smeltd token prints it)',
      );
    }
    const given = createHash('sha256').update(match[1]).digest();
    if (!timingSafeEqual(given, expected)) throw new SmeltError('unauthorized', 'the API token is wrong');
  };
}
