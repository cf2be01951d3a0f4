import { z } from 'zod';
import { bootDetailsSchema, bootPatchSchema, bootSchema, bootSpecSchema, bootKinds } from './boot.ts';
import { globalDefaultsSchema } from './defaults.ts';
import {
  deploymentPatchSchema,
  deploymentSchema,
  deploymentSpecSchema,
  deploymentStates,
  deploymentTypes,
} from './deployment.ts';
import { macSchema } from './mac.ts';
import { ipv4Schema } from './net.ts';
import { machinePatchSchema, machineSchema, machineSpecSchema, machineStates } from './machine.ts';
import { resourceNameSchema } from './name.ts';
import { leaseSchema, leaseStates } from './lease.ts';
import { eventSchema, eventTypes } from './event.ts';
import { pageQueryShape, pageSchema } from './page.ts';
import { mergePatchShape } from './patch.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One API route: everything the daemon validates and the client relies on, declared once. */
export interface RouteDef {
  readonly method: HttpMethod;
  /** Koa-style path with `:param` placeholders. */
  readonly path: string;
  readonly summary: string;
  /** False only for probes that must answer without a token. */
  readonly auth: boolean;
  readonly params?: z.ZodObject;
  readonly query?: z.ZodObject;
  readonly body?: z.ZodType;
  /** Null for 204 No Content. */
  readonly response: z.ZodType | null;
  readonly status: 200 | 201 | 204;
}

function route<const R extends RouteDef>(def: R): R {
  return def;
}

const nameParams = z.strictObject({ name: resourceNameSchema });
const macParams = z.strictObject({ mac: macSchema });
/** A deployment is addressed by its name or by its machine's MAC (any spelling). */
const deploymentRefParams = z.strictObject({ ref: z.string().min(1).max(63) });

export const routeListSchema = z.object({
  version: z.string(),
  routes: z.array(z.object({ method: z.string(), path: z.string(), summary: z.string() })),
});
export const healthSchema = z.object({ status: z.literal('ok'), version: z.string(), uptimeSeconds: z.number() });

export const routes = {
  health: route({
    method: 'GET',
    path: '/healthz',
    summary: 'Liveness probe',
    auth: false,
    response: healthSchema,
    status: 200,
  }),
  index: route({
    method: 'GET',
    path: '/api/v1',
    summary: 'List the API routes',
    auth: true,
    response: routeListSchema,
    status: 200,
  }),

  listBoots: route({
    method: 'GET',
    path: '/api/v1/boots',
    summary: 'List boots',
    auth: true,
    query: z.strictObject({ ...pageQueryShape, kind: z.enum(bootKinds).optional() }),
    response: pageSchema(bootSchema),
    status: 200,
  }),
  getBoot: route({
    method: 'GET',
    path: '/api/v1/boots/:name',
    summary: 'Show a boot',
    auth: true,
    params: nameParams,
    response: bootSchema,
    status: 200,
  }),
  getBootDetails: route({
    method: 'GET',
    path: '/api/v1/boots/:name/details',
    summary: "A boot's ISO (volume, file count, El Torito boot catalog) and the URLs machines fetch",
    auth: true,
    params: nameParams,
    response: bootDetailsSchema,
    status: 200,
  }),
  createBoot: route({
    method: 'POST',
    path: '/api/v1/boots',
    summary: 'Create a boot',
    auth: true,
    body: bootSpecSchema,
    response: bootSchema,
    status: 201,
  }),
  updateBoot: route({
    method: 'PATCH',
    path: '/api/v1/boots/:name',
    summary: 'Change a boot (JSON merge patch)',
    auth: true,
    params: nameParams,
    body: bootPatchSchema,
    response: bootSchema,
    status: 200,
  }),
  deleteBoot: route({
    method: 'DELETE',
    path: '/api/v1/boots/:name',
    summary: 'Delete a boot no deployment uses',
    auth: true,
    params: nameParams,
    response: null,
    status: 204,
  }),

  listDeployments: route({
    method: 'GET',
    path: '/api/v1/deployments',
    summary: 'List deployments',
    auth: true,
    query: z.strictObject({
      ...pageQueryShape,
      boot: resourceNameSchema.optional(),
      state: z.enum(deploymentStates).optional(),
      type: z.enum(deploymentTypes).optional(),
    }),
    response: pageSchema(deploymentSchema),
    status: 200,
  }),
  getDeployment: route({
    method: 'GET',
    path: '/api/v1/deployments/:ref',
    summary: 'Show a deployment (by name or MAC)',
    auth: true,
    params: deploymentRefParams,
    response: deploymentSchema,
    status: 200,
  }),
  createDeployment: route({
    method: 'POST',
    path: '/api/v1/deployments',
    summary: 'Bind a machine to a boot',
    auth: true,
    body: deploymentSpecSchema,
    response: deploymentSchema,
    status: 201,
  }),
  updateDeployment: route({
    method: 'PATCH',
    path: '/api/v1/deployments/:ref',
    summary: 'Change a deployment (JSON merge patch; by name or MAC)',
    auth: true,
    params: deploymentRefParams,
    body: deploymentPatchSchema,
    response: deploymentSchema,
    status: 200,
  }),
  deleteDeployment: route({
    method: 'DELETE',
    path: '/api/v1/deployments/:ref',
    summary: 'Delete a deployment (by name or MAC); its machine becomes free',
    auth: true,
    params: deploymentRefParams,
    response: null,
    status: 204,
  }),

  listLeases: route({
    method: 'GET',
    path: '/api/v1/leases',
    summary: 'List DHCP leases (bound, released and declined addresses), in address order',
    auth: true,
    query: z.strictObject({
      ...pageQueryShape,
      mac: macSchema.optional(),
      state: z.enum(leaseStates).optional(),
    }),
    response: pageSchema(leaseSchema),
    status: 200,
  }),

  listMachines: route({
    method: 'GET',
    path: '/api/v1/machines',
    summary: 'List machines',
    auth: true,
    query: z.strictObject({
      ...pageQueryShape,
      state: z.enum(machineStates).optional(),
      arch: z.string().max(64).optional(),
    }),
    response: pageSchema(machineSchema),
    status: 200,
  }),
  getMachine: route({
    method: 'GET',
    path: '/api/v1/machines/:mac',
    summary: 'Show a machine',
    auth: true,
    params: macParams,
    response: machineSchema,
    status: 200,
  }),
  createMachine: route({
    method: 'POST',
    path: '/api/v1/machines',
    summary: 'Register a machine before it is seen',
    auth: true,
    body: machineSpecSchema,
    response: machineSchema,
    status: 201,
  }),
  updateMachine: route({
    method: 'PATCH',
    path: '/api/v1/machines/:mac',
    summary: "Change a machine's labels",
    auth: true,
    params: macParams,
    body: machinePatchSchema,
    response: machineSchema,
    status: 200,
  }),
  deleteMachine: route({
    method: 'DELETE',
    path: '/api/v1/machines/:mac',
    summary: 'Forget a machine that has no deployment',
    auth: true,
    params: macParams,
    response: null,
    status: 204,
  }),
  releaseMachine: route({
    method: 'POST',
    path: '/api/v1/machines/:mac/release',
    summary: 'Release a machine: it becomes free, or is wiped first with {"wipe": true}',
    auth: true,
    params: macParams,
    body: z.strictObject({ wipe: z.boolean().default(false) }),
    response: machineSchema,
    status: 200,
  }),
  wakeMachine: route({
    method: 'POST',
    path: '/api/v1/machines/:mac/wake',
    summary: "Wake-on-LAN: a magic packet to the machine's subnet broadcast, ports 9 and 7",
    auth: true,
    params: macParams,
    body: z.strictObject({
      /** Where to send it; default: the broadcast address of the subnet of the machine's address or last lease. */
      broadcast: ipv4Schema.optional(),
      /** SecureOn password: 4 or 6 bytes in hex. */
      password: z
        .string()
        .regex(/^([0-9a-fA-F]{2}[:.-]?){3}[0-9a-fA-F]{2}$|^([0-9a-fA-F]{2}[:.-]?){5}[0-9a-fA-F]{2}$/, {
          message: 'a SecureOn password is 4 or 6 bytes in hex, e.g. 01:02:03:04:05:06',
        })
        .optional(),
    }),
    response: z.object({ mac: macSchema, sent: z.array(z.string()) }),
    status: 200,
  }),
  reinstallMachine: route({
    method: 'POST',
    path: '/api/v1/machines/:mac/reinstall',
    summary: 'Install a deployed (or failed) machine again: back to provisioning',
    auth: true,
    params: macParams,
    body: z.strictObject({}),
    response: machineSchema,
    status: 200,
  }),

  listEvents: route({
    method: 'GET',
    path: '/api/v1/events',
    summary: 'Recent events, oldest first (Accept: text/event-stream follows them live)',
    auth: true,
    query: z.strictObject({
      after: z.coerce.number().int().nonnegative().optional(),
      limit: z.coerce.number().int().min(1).max(10_000).default(1000),
      mac: macSchema.optional(),
      type: z.enum(eventTypes).optional(),
    }),
    // latest: the newest event's number, matching or not, so a follower can resume from it without a gap.
    response: z.object({ items: z.array(eventSchema), next: z.string().nullable(), latest: z.number().int() }),
    status: 200,
  }),

  getDefaults: route({
    method: 'GET',
    path: '/api/v1/defaults',
    summary: 'Show the global defaults',
    auth: true,
    response: globalDefaultsSchema,
    status: 200,
  }),
  replaceDefaults: route({
    method: 'PUT',
    path: '/api/v1/defaults',
    summary: 'Replace the global defaults',
    auth: true,
    body: globalDefaultsSchema,
    response: globalDefaultsSchema,
    status: 200,
  }),
  updateDefaults: route({
    method: 'PATCH',
    path: '/api/v1/defaults',
    summary: 'Change the global defaults (JSON merge patch)',
    auth: true,
    body: z.strictObject(mergePatchShapeOfDefaults()),
    response: globalDefaultsSchema,
    status: 200,
  }),
} as const satisfies Record<string, RouteDef>;

function mergePatchShapeOfDefaults() {
  return mergePatchShape(globalDefaultsSchema.shape);
}

export type Routes = typeof routes;
export type RouteId = keyof Routes;

/** What a caller passes for a route (schema inputs) and what it gets back (schema outputs). */
export type RouteParams<R extends RouteDef> = R['params'] extends z.ZodType ? z.input<R['params']> : undefined;
export type RouteQuery<R extends RouteDef> = R['query'] extends z.ZodType ? z.input<R['query']> : undefined;
export type RouteBody<R extends RouteDef> = R['body'] extends z.ZodType ? z.input<R['body']> : undefined;
export type RouteResponse<R extends RouteDef> = R['response'] extends z.ZodType ? z.output<R['response']> : undefined;

/** Substitutes `:param` placeholders, percent-encoding each value. */
export function buildPath(path: string, params: Record<string, string> | undefined): string {
  return path.replace(/:([A-Za-z]+)/g, (_, key: string) => {
    const value = params?.[key];
    if (value === undefined) throw new Error(`missing path parameter "${key}" for ${path}`);
    return encodeURIComponent(value);
  });
}
