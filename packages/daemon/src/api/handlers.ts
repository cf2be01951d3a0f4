import type { z } from 'zod';
import type { RouteDef, RouteId, RouteResponse, Routes } from '@smelt/shared/api';
import type { Inventory } from '../inventory/inventory.ts';
import type { EventJournal } from '../events/journal.ts';
import { machineUrls } from '../boot/urls.ts';
import type { AdmissionControl } from '../boot/admission.ts';
import type { Machine } from '@smelt/shared/machine';
import { findSubnet, type Subnet } from '../dhcp/subnets.ts';
import { magicPacket, parseSecureOn, sendWake } from '../power/wol.ts';
import { ipv4ToNumber, numberToIpv4 } from '@smelt/shared/net';

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;
export interface HandlerInput<R extends RouteDef> {
  params: Parsed<R['params']>;
  query: Parsed<R['query']>;
  body: Parsed<R['body']>;
}
export type Handlers = {
  [K in Exclude<RouteId, 'health' | 'index'>]: (input: HandlerInput<Routes[K]>) => Promise<RouteResponse<Routes[K]>>;
};

/** Each API route's work, as a call into the inventory with already-validated input. */
export interface HandlerContext {
  events?: EventJournal | undefined;
  /** The machine-facing base URL (known once HTTP is bound). */
  machineBaseUrl: () => string;
  /** The DHCP subnets: where a machine's wake-up packet is broadcast. */
  subnets: readonly Subnet[];
  /** The install queue, shown on machines that wait in it. */
  admission?: AdmissionControl | undefined;
}

export function createHandlers(inventory: Inventory, context: HandlerContext): Handlers {
  const { events, machineBaseUrl } = context;
  const withQueue = (machine: Machine): Machine => {
    const status = context.admission?.status(machine.mac);
    return status?.state === 'queued' ? { ...machine, queue: status.position } : machine;
  };
  const { boots, deployments, machines, defaults, leases } = inventory;
  return {
    listBoots: ({ query }) => boots.list(query),
    getBoot: ({ params }) => boots.get(params.name),
    getBootDetails: async ({ params }) => {
      const boot = await boots.get(params.name);
      const urls = machineUrls(machineBaseUrl());
      const iso = await boots.iso(params.name);
      return {
        ...(iso && { iso }),
        urls: {
          ...(boot.kernel !== undefined && { kernel: urls.bootFile(boot, boot.kernel, 'kernel') }),
          initrd: boot.initrd.map((file, index) => urls.bootFile(boot, file, index)),
          ...(boot.isoPath !== undefined && { iso: urls.iso(boot) }),
        },
      };
    },
    createBoot: ({ body }) => boots.create(body),
    updateBoot: ({ params, body }) => boots.update(params.name, body),
    deleteBoot: ({ params }) => noContent(boots.delete(params.name)),

    listDeployments: ({ query }) => deployments.list(query),
    getDeployment: ({ params }) => deployments.get(params.ref),
    createDeployment: ({ body }) => deployments.create(body),
    updateDeployment: ({ params, body }) => deployments.update(params.ref, body),
    deleteDeployment: ({ params }) => noContent(deployments.delete(params.ref)),

    listLeases: ({ query }) => leases.list(query),

    listMachines: async ({ query }) => {
      const page = await machines.list(query);
      return { ...page, items: page.items.map(withQueue) };
    },
    getMachine: async ({ params }) => withQueue(await machines.get(params.mac)),
    createMachine: ({ body }) => machines.create(body),
    updateMachine: ({ params, body }) => machines.update(params.mac, body),
    deleteMachine: ({ params }) => noContent(machines.delete(params.mac)),
    releaseMachine: async ({ params, body }) => {
      await deployments.release(params.mac, body.wipe);
      return machines.get(params.mac);
    },
    wakeMachine: async ({ params, body }) => {
      const known = await machines.get(params.mac).catch(() => undefined);
      const deployment = known?.deployment ? await deployments.get(params.mac) : undefined;
      const address = deployment?.address ?? known?.lastLease;
      const subnet = address === undefined ? undefined : findSubnet(context.subnets, ipv4ToNumber(address) ?? 0);
      // The subnet's directed broadcast reaches the machine's segment even behind a router that forwards it;
      // without a known subnet, the limited broadcast reaches this host's own segments.
      const target = body.broadcast ?? (subnet ? numberToIpv4(subnet.broadcast) : '255.255.255.255');
      const sent = await sendWake(
        magicPacket(params.mac, body.password === undefined ? undefined : parseSecureOn(body.password)),
        [target],
      );
      events?.record('machine.woken', { mac: params.mac, message: `magic packet sent to ${sent.join(', ')}` });
      return { mac: params.mac, sent };
    },
    reinstallMachine: async ({ params }) => {
      await deployments.reinstall(params.mac);
      return machines.get(params.mac);
    },

    listEvents: ({ query }) => {
      const matching = (events?.since(query.after ?? 0) ?? []).filter(
        (event) =>
          (query.mac === undefined || event.mac === query.mac) &&
          (query.type === undefined || event.type === query.type),
      );
      const items = matching.slice(0, query.limit);
      const last = items.at(-1);
      return Promise.resolve({
        items,
        next: matching.length > items.length && last ? String(last.seq) : null,
        latest: events?.latest() ?? 0,
      });
    },

    getDefaults: () => defaults.get(),
    replaceDefaults: ({ body }) => defaults.replace(body),
    updateDefaults: ({ body }) => defaults.update(body),
  };
}

/** A 204 route answers nothing: its handler resolves to undefined once the work is done. */
async function noContent(work: Promise<void>): Promise<undefined> {
  await work;
  return undefined;
}
