import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { routes, type RouteDef, type RouteId } from '@smelt/shared/api';
import { fieldErrorsFromZod, type FieldError } from '@smelt/shared/problem';
import { SmeltError } from '../errors.ts';
import type { Inventory } from '../inventory/inventory.ts';
import type { Metrics } from '../metrics.ts';
import { createTokenCheck } from './auth.ts';
import { readJsonBody } from './body.ts';
import { createHandlers, type Handlers } from './handlers.ts';
import { writeProblem } from './problem.ts';
import { streamEvents, wantsEventStream } from './event-stream.ts';
import type { IsoStore } from './iso-upload.ts';
import type { Subnet } from '../dhcp/subnets.ts';
import type { AdmissionControl } from '../boot/admission.ts';
import type { EventJournal } from '../events/journal.ts';

export interface ApiOptions {
  inventory: Inventory;
  events?: EventJournal;
  isos?: IsoStore;
  subnets?: readonly Subnet[];
  admission?: AdmissionControl;
  /** The machine-facing base URL, for the URLs `describe boot` shows (known once HTTP is bound). */
  machineBaseUrl?: () => string;
  metrics: Metrics;
  token: string;
  log: Logger;
  version: string;
  startedAt: number;
}

/** Validates one part of a request against its schema; every problem is reported at once, with where it was. */
function validate(schema: z.ZodType | undefined, value: unknown, where: FieldError['in']): unknown {
  if (!schema) return undefined;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const errors = fieldErrorsFromZod(parsed.error, where);
  const summary = errors.map((e) => `${e.in}${e.path ? '.' + e.path : ''}: ${e.message}`).join('; ');
  throw new SmeltError('invalid_request', summary, errors);
}

/** Query values arrive as string | string[]; a repeated key is kept as the array so the schema can refuse it. */
function plainQuery(ctx: Context): Record<string, unknown> {
  return { ...ctx.query };
}

/** The REST API under /api/v1, built from the shared route table so that it and smeltctl cannot drift apart. */
export function createApiApp(options: ApiOptions): Koa {
  const { log } = options;
  const app = new Koa();
  const router = new Router();
  const checkToken = createTokenCheck(options.token);
  const handlers: Handlers = createHandlers(options.inventory, {
    events: options.events,
    machineBaseUrl: options.machineBaseUrl ?? (() => ''),
    subnets: options.subnets ?? [],
    admission: options.admission,
  });
  const special: Partial<Record<RouteId, () => unknown>> = {
    health: () => ({
      status: 'ok',
      version: options.version,
      uptimeSeconds: Math.round((Date.now() - options.startedAt) / 1000),
    }),
    index: () => ({
      version: options.version,
      routes: Object.values(routes).map(({ method, path, summary }) => ({ method, path, summary })),
    }),
  };

  for (const [id, route] of Object.entries(routes) as [RouteId, RouteDef][]) {
    const handle = special[id] ?? (handlers as Record<string, (input: unknown) => Promise<unknown>>)[id];
    if (!handle) throw new Error(`no handler for route ${id}`);
    router.register(route.path, [route.method], async (ctx: Context) => {
      if (route.auth) checkToken(ctx);
      const params = validate(route.params, ctx.params, 'params');
      const query = validate(route.query, plainQuery(ctx), 'query');
      const rawBody = route.body ? await readJsonBody(ctx) : undefined;
      if (route.body && rawBody === undefined) {
        throw new SmeltError('invalid_request', 'this request needs a JSON body', [
          { in: 'body', path: '', message: 'required' },
        ]);
      }
      const body = validate(route.body, rawBody, 'body');
      const result = await handle({ params, query, body });
      ctx.status = route.status;
      if (route.status !== 204) ctx.body = result;
    });
  }

  app.use(async (ctx, next) => {
    const started = performance.now();
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new SmeltError('not_found', `no API route ${ctx.method} ${ctx.path}; GET /api/v1 lists them`);
      }
      // The router answered a known path with the wrong method: keep its Allow header (RFC 9110 §15.5.6).
      if ((ctx.status === 405 || ctx.status === 501) && ctx.body === undefined) {
        const allowed = ctx.response.get('Allow');
        throw new SmeltError('method_not_allowed', `${ctx.method} is not allowed on ${ctx.path}; allowed: ${allowed}`);
      }
    } catch (error) {
      writeProblem(ctx, error, log);
    }
    log.debug(
      { method: ctx.method, path: ctx.path, status: ctx.status, ms: performance.now() - started },
      'api request',
    );
  });
  // ISO uploads are raw bodies, streamed to disk: they bypass the JSON body reader.
  if (options.isos) {
    const isos = options.isos;
    app.use(async (ctx, next) => {
      if (!ctx.path.startsWith('/api/v1/isos')) {
        await next();
        return;
      }
      checkToken(ctx);
      if (!(await isos.handle(ctx))) await next();
    });
  }
  // Server-Sent Events share the path of the JSON list; the Accept header chooses.
  app.use(async (ctx, next) => {
    if (!options.events || !wantsEventStream(ctx)) {
      await next();
      return;
    }
    checkToken(ctx);
    streamEvents(ctx, options.events);
  });
  // Prometheus scrapes without a token; counters and gauges hold nothing secret.
  router.get('/metrics', (ctx) => {
    ctx.type = 'text/plain; version=0.0.4';
    ctx.body = options.metrics.render();
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
