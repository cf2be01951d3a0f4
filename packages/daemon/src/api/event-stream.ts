import type { Context } from 'koa';
import { eventTypes, type SmeltEvent } from '@smelt/shared/event';
import { tryParseMac } from '@smelt/shared/mac';
import { SmeltError } from '../errors.ts';
import type { EventJournal } from '../events/journal.ts';

/**
 * GET /api/v1/events with `Accept: text/event-stream`: the event history after `after` (or the client's
 * Last-Event-ID, so a reconnect loses nothing), then every new event as it happens (Server-Sent Events, HTML
 * Living Standard §9.2), filtered by `mac` and `type`. A comment line every 15 s keeps proxies from closing it.
 */
export function wantsEventStream(ctx: Context): boolean {
  return (
    ctx.method === 'GET' &&
    ctx.path === '/api/v1/events' &&
    ctx.accepts('application/json', 'text/event-stream') === 'text/event-stream'
  );
}

export function streamEvents(ctx: Context, journal: EventJournal): void {
  const macText = typeof ctx.query.mac === 'string' ? ctx.query.mac : undefined;
  const mac = macText === undefined ? undefined : tryParseMac(macText);
  if (macText !== undefined && !mac) {
    throw new SmeltError('invalid_request', `query.mac: not a MAC address: ${macText}`, [
      { in: 'query', path: 'mac', message: 'not a MAC address' },
    ]);
  }
  const type = typeof ctx.query.type === 'string' ? ctx.query.type : undefined;
  if (type !== undefined && !(eventTypes as readonly string[]).includes(type)) {
    throw new SmeltError('invalid_request', `query.type: not an event type: ${type}`, [
      { in: 'query', path: 'type', message: `one of ${eventTypes.join(', ')}` },
    ]);
  }
  const resume = ctx.get('Last-Event-ID') || (typeof ctx.query.after === 'string' ? ctx.query.after : '');
  const after = /^\d+$/.test(resume) ? Number(resume) : undefined;
  const matches = (event: SmeltEvent) => (!mac || event.mac === mac) && (!type || event.type === type);

  ctx.respond = false;
  const response = ctx.res;
  response.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
  });
  const send = (event: SmeltEvent) => {
    if (matches(event))
      response.write(`id: ${String(event.seq)}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  };
  if (after !== undefined) for (const event of journal.since(after)) send(event);
  response.write(': following\n\n');
  const stop = journal.subscribe(send);
  const keepAlive = setInterval(() => response.write(': keep-alive\n\n'), 15_000);
  keepAlive.unref();
  const end = () => {
    stop();
    clearInterval(keepAlive);
  };
  response.once('close', end);
  ctx.req.once('close', end);
}
