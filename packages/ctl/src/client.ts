import got, { RequestError } from 'got';
import type { z } from 'zod';
import {
  buildPath,
  routes,
  type RouteBody,
  type RouteDef,
  type RouteId,
  type RouteParams,
  type RouteQuery,
  type RouteResponse,
  type Routes,
} from '@smelt/shared/api';
import { fieldErrorsFromZod, problemSchema, PROBLEM_CONTENT_TYPE, type FieldError } from '@smelt/shared/problem';
import type { Connection } from './connection.ts';
import {
  CliFailure,
  exitCodes,
  fieldErrorLines,
  httpStatusFailure,
  problemFailure,
  unreachableFailure,
  usageFailure,
} from './failure.ts';

/** What a caller passes for one route: exactly the parts its schemas declare. */
export type CallInput<R extends RouteDef> = (R['params'] extends z.ZodType
  ? { params: RouteParams<R> }
  : { params?: never }) &
  (R['query'] extends z.ZodType ? { query?: RouteQuery<R> } : { query?: never }) &
  (R['body'] extends z.ZodType ? { body: RouteBody<R> } : { body?: never });

/** Routes whose answer is a page `{items, next}`. */
export type ListRouteId = {
  [K in RouteId]: RouteResponse<Routes[K]> extends { items: unknown[]; next: string | null } ? K : never;
}[RouteId];
export type ListItem<K extends ListRouteId> = RouteResponse<Routes[K]> extends { items: (infer T)[] } ? T : never;

export interface Client {
  readonly server: string;
  call<K extends RouteId>(id: K, input: CallInput<Routes[K]>): Promise<RouteResponse<Routes[K]>>;
  /** Every item of a list route, following `next` cursors until the last page. */
  list<K extends ListRouteId>(id: K, query?: RouteQuery<Routes[K]>): Promise<ListItem<K>[]>;
}

export interface ClientOptions {
  /** Whole-request limit; a daemon that accepts the connection and never answers is as unreachable as one that is down. */
  timeoutMs?: number;
  userAgent?: string;
}

/** The largest page the list routes accept (page.ts): fewer round trips for a full listing. */
const PAGE_LIMIT = 1000;

function validate(schema: z.ZodType | undefined, value: unknown, where: FieldError['in']): unknown {
  if (!schema) return undefined;
  const result = schema.safeParse(value ?? {});
  if (!result.success) {
    // The same "in.path: message" lines as a problem+json answer would give, the first one after "Error: ".
    const [first = 'the request is not valid', ...more] = fieldErrorLines(fieldErrorsFromZod(result.error, where));
    throw usageFailure(first.trim(), ...more);
  }
  return result.data;
}

function toSearchParams(query: unknown): Record<string, string> {
  const entries = Object.entries((query ?? {}) as Record<string, unknown>).filter(([, value]) => value !== undefined);
  return Object.fromEntries(entries.map(([key, value]) => [key, String(value)]));
}

const tokenSources: Record<Connection['tokenSource'], string> = {
  flag: '--token',
  env: 'SMELT_TOKEN',
  config: 'the config file (smeltctl login)',
  default: 'nowhere',
  none: 'nowhere',
};

/** The one failure whose cause is usually on this side: say which token was sent, or that none was. */
function unauthorizedHint(connection: Connection): string {
  return connection.tokenSource === 'none'
    ? '  no token was sent: use --token, SMELT_TOKEN or `smeltctl login`'
    : `  the token came from ${tokenSources[connection.tokenSource]}`;
}

export function createClient(connection: Connection, options: ClientOptions = {}): Client {
  const { server } = connection;

  async function call(id: RouteId, input: { params?: unknown; query?: unknown; body?: unknown }): Promise<unknown> {
    const route: RouteDef = routes[id];
    // Validate at the edge (DESIGN.md §5.5): a bad value is caught here with the same schema the daemon uses, and
    // what is sent is the parsed value (canonical MAC, dotted netmask).
    const params = validate(route.params, input.params, 'params') as Record<string, string> | undefined;
    const query = validate(route.query, input.query, 'query');
    const body = validate(route.body, input.body, 'body');
    const url = `${server}${buildPath(route.path, params)}`;

    let response;
    try {
      response = await got(url, {
        method: route.method,
        searchParams: toSearchParams(query),
        ...(route.body ? { json: body } : {}),
        headers: {
          accept: `application/json, ${PROBLEM_CONTENT_TYPE}`,
          'user-agent': options.userAgent ?? 'smeltctl',
          ...(route.auth && connection.token ? { authorization: `Bearer ${connection.token}` } : {}),
        },
        responseType: 'text',
        throwHttpErrors: false,
        // A CLI fails fast and lets its caller decide: got's default retries would add seconds before exit 5.
        retry: { limit: 0 },
        timeout: { request: options.timeoutMs ?? 30_000 },
      });
    } catch (error) {
      if (error instanceof RequestError) throw unreachableFailure(server, error.code, error.message);
      throw error;
    }

    const contentType = response.headers['content-type'] ?? '';
    if (response.statusCode < 200 || response.statusCode > 299) {
      if (/^application\/(problem\+)?json/.test(contentType)) {
        const problem = problemSchema.safeParse(safeJson(response.body));
        if (problem.success) {
          const failure = problemFailure(problem.data);
          if (problem.data.code !== 'unauthorized') throw failure;
          throw new CliFailure(failure.exitCode, [failure.message, unauthorizedHint(connection)]);
        }
      }
      throw httpStatusFailure(url, response.statusCode, response.statusMessage ?? '', response.body);
    }
    if (route.response === null) return undefined;
    const parsed = route.response.safeParse(safeJson(response.body));
    if (!parsed.success) {
      throw new CliFailure(exitCodes.serverFailure, [
        `${url} sent an answer this smeltctl does not understand (are the versions different?)`,
        ...fieldErrorLines(fieldErrorsFromZod(parsed.error, 'body')),
      ]);
    }
    return parsed.data;
  }

  async function list(id: ListRouteId, query?: unknown): Promise<unknown[]> {
    const items: unknown[] = [];
    let cursor: string | undefined;
    do {
      const page = (await call(id, {
        query: { limit: PAGE_LIMIT, ...(query as object | undefined), cursor },
      })) as { items: unknown[]; next: string | null };
      items.push(...page.items);
      cursor = page.next ?? undefined;
    } while (cursor !== undefined);
    return items;
  }

  return { server, call, list } as Client;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
