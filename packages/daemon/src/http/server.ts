import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tryParseMac } from '@smelt/shared/mac';
import type { Logger } from 'pino';
import type { AdmissionControl } from '../boot/admission.ts';
import type { EventJournal } from '../events/journal.ts';
import type { BootDecider } from '../boot/decider.ts';
import { machineUrls } from '../boot/urls.ts';
import type { Config } from '../config/schema.ts';
import type { Subnet } from '../dhcp/subnets.ts';
import { SmeltError } from '../errors.ts';
import type { Inventory } from '../inventory/inventory.ts';
import { listenHttp } from '../listen.ts';
import type { Metrics } from '../metrics.ts';
import { answerFiles as loadAnswerFiles } from '../render/answers.ts';
import { UnsafeValueError } from '../render/escape.ts';
import { TemplateError } from '../render/template.ts';
import { ConfigError } from '../config/load.ts';
import { buildRenderContext } from '../render/build-context.ts';
import { renderImageJob } from '../render/image-job.ts';
import { renderIpxe, ScriptValueError, type ScriptSpec } from '../render/ipxe.ts';
import { effectiveHostSettings } from '@smelt/shared/defaults';
import { normalisePath } from '../tree/mounts.ts';
import { PathRefusedError, type FileTree } from '../tree/tree.ts';
import type { StateView } from '../view/state-view.ts';
import { createSendfilePool } from './sendfile-pool.ts';
import { createStreamBudget, sendFile } from './send-file.ts';
import { reclaimWhenQuiet } from './quiet-reclaim.ts';
import { reclaimMemory } from '../reclaim-memory.ts';

/**
 * The machine-facing HTTP server (DESIGN.md §6): no API token, nothing secret but per-deployment tokens in
 * paths. Per-MAC iPXE scripts and answer files are rendered from the in-memory view at request time; boot files
 * are streamed from local files, from inside ISOs by byte range, or from the shared file tree.
 *
 *   GET  /boot/<mac>.ipxe                        the script for the machine's current state
 *   GET  /answers/<mac>/<token>/<file>           preseed.cfg, ks.cfg, user-data, meta-data, vendor-data
 *   GET  /jobs/<mac>/<token>/image.sh             an image deployment's job, for the image writer
 *   POST /hooks/<mac>/<token>/installed|failed   phone-home (GET too, for installers that only have wget)
 *   POST /hooks/<mac>/<token>/progress           an image writer's bytes=N[&total=N]
 *   GET  /<path>                                 the shared tree (tree/): boots' kernels and initrds
 *        (/boots/...), ISOs whole and file by file (/iso/..., /<isoPrefix>/...), per-MAC PXELINUX and GRUB
 *        configs, files.dirs, and ipxe.dir (HTTP Boot's ipxe.efi)
 */
export interface HttpDeps {
  config: Config;
  view: StateView;
  inventory: Inventory;
  tree: FileTree;
  decide: BootDecider;
  admission: AdmissionControl;
  events?: EventJournal;
  subnets: readonly Subnet[];
  /** The base URL machines use, given the port actually bound (config may say port 0). */
  baseUrlFor: (boundPort: number) => string;
  log: Logger;
  metrics: Metrics;
}

export interface RunningHttpServer {
  address: { host: string; port: number };
  baseUrl: string;
  close(): Promise<void>;
}

class HttpFailure extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const notFound = (what: string) => new HttpFailure(404, `${what} not found`);

export async function startHttpServer(deps: HttpDeps): Promise<RunningHttpServer> {
  const { view, log, config } = deps;
  let answerFiles: ReturnType<typeof loadAnswerFiles>;
  try {
    answerFiles = loadAnswerFiles(config.templates);
  } catch (error) {
    // A template that does not compile (or cannot be read) is a configuration problem: exit 2 with its line.
    throw new ConfigError([error instanceof Error ? error.message : String(error)]);
  }
  // Set once the server is bound; no request is routed before that.
  let baseUrl = '';
  let urls = machineUrls(baseUrl);
  const lastTold = new Map<string, { message: string; at: number }>();
  const streaming = createStreamBudget();
  // Large boot files go out by sendfile(2) from these threads; 0 streams everything through the event loop.
  const zeroCopy =
    config.http.sendfileThreads > 0
      ? createSendfilePool({
          threads: config.http.sendfileThreads,
          onThreadError: (error) => {
            log.error({ err: error }, 'a sendfile thread failed; its downloads were cut off');
          },
        })
      : undefined;
  const admissionGauge = deps.metrics.gauge('smelt_admission', 'Machines downloading boot files, and waiting to');
  const updateAdmissionGauges = () => {
    const counts = deps.admission.counts();
    admissionGauge.set(counts.active, { state: 'downloading' });
    admissionGauge.set(counts.queued, { state: 'queued' });
  };
  const fileBodies = deps.metrics.counter(
    'smelt_http_file_bodies_total',
    'File bodies sent, by how: sendfile (zero copy, from the sendfile threads) or stream (through the event loop)',
  );
  const requests = deps.metrics.counter(
    'smelt_http_requests_total',
    'Machine-facing HTTP requests, by route and status',
  );

  async function route(request: IncomingMessage, response: ServerResponse): Promise<string> {
    const url = new URL(request.url ?? '/', 'http://machine');
    const parts = url.pathname.split('/').slice(1).map(decodeSegment);
    const method = request.method ?? 'GET';
    const [first, ...rest] = parts;
    if (first === 'hooks' && rest.length === 3) {
      if (method !== 'POST' && method !== 'GET') throw new HttpFailure(405, 'use POST');
      await hook(request, response, rest);
      return 'hook';
    }
    if (method !== 'GET' && method !== 'HEAD') throw new HttpFailure(405, 'use GET or HEAD');
    if (first === 'boot' && rest.length === 1 && rest[0]?.endsWith('.ipxe')) {
      script(request, response, rest[0].slice(0, -'.ipxe'.length), method);
      return 'script';
    }
    if (first === 'jobs' && rest.length === 3 && rest[2] === 'image.sh') {
      imageJob(response, rest, method);
      return 'job';
    }
    if (first === 'answers' && rest.length === 3) {
      answer(response, rest, method);
      return 'answer';
    }
    // Everything else is the shared tree: boot files, ISO contents, configured directories, iPXE binaries.
    const path = normalisePath(url.pathname);
    const file = await deps.tree.resolve(path, peerOf(request));
    if (!file) throw notFound(url.pathname);
    const via = await sendFile(request, response, file, contentTypeOf(path), {
      budget: streaming,
      ...(zeroCopy ? { zeroCopy } : {}),
    });
    if (via !== 'none') fileBodies.inc({ via });
    // A whole file sent (not a HEAD, not a range): it may be a machine's last boot file, freeing its slot.
    if (method === 'GET' && response.statusCode === 200 && response.writableEnded) {
      deps.admission.sent(request.socket.remoteAddress ?? '', `/${path}`);
      updateAdmissionGauges();
    }
    return 'tree';
  }

  function script(request: IncomingMessage, response: ServerResponse, macText: string, method: string): void {
    const mac = tryParseMac(macText);
    if (!mac) throw new HttpFailure(400, `not a MAC address: ${macText}`);
    const spec = paced(mac, deps.decide(mac), request.socket.remoteAddress ?? '');
    let body: string;
    try {
      body = renderIpxe(spec);
    } catch (error) {
      if (error instanceof ScriptValueError) throw new HttpFailure(500, error.message);
      throw error;
    }
    log.debug({ mac, kind: spec.kind }, 'iPXE script');
    // What a machine was told, when it changes (the hold and wait loops poll, so they are not events, and a
    // machine fetching the same script again within ten minutes is not news).
    if (spec.kind !== 'hold' && spec.kind !== 'wait') {
      const message = `iPXE script: ${describeScript(spec)}`;
      const last = lastTold.get(mac);
      const now = Date.now();
      if (last?.message !== message || now - last.at > 600_000) {
        if (lastTold.size > 100_000) lastTold.clear();
        lastTold.set(mac, { message, at: now });
        deps.events?.record('file.served', { mac, subject: 'boot script', message });
      }
    }
    sendText(response, 'text/plain; charset=utf-8', body, method);
  }

  /**
   * An installer script is handed out only with a download slot (boot/admission.ts); without one the machine
   * gets a short wait-and-ask-again script. Boot files from elsewhere (a mirror) cost us nothing: never paced.
   */
  function paced(mac: string, spec: ScriptSpec, ip: string): ScriptSpec {
    if (spec.kind !== 'installer') return spec;
    const ours = [spec.kernelUrl, ...spec.initrdUrls].filter((url) => url.startsWith(`${baseUrl}/`));
    const last = ours.at(-1);
    if (last === undefined) return spec;
    const lastPath = decodeURI(new URL(last).pathname);
    const admission = deps.admission.admit(mac, ip, lastPath);
    updateAdmissionGauges();
    if (admission.admitted) return spec;
    return {
      kind: 'wait',
      mac,
      selfUrl: spec.selfUrl,
      position: admission.position,
      waitSeconds: admission.waitSeconds,
    };
  }

  function answer(response: ServerResponse, [macText = '', token = '', name = '']: string[], method: string) {
    const mac = tryParseMac(macText);
    const deployment = mac && view.deployment(mac);
    const expected = mac && view.token(mac);
    // A wrong token and an unknown machine look the same from outside.
    if (!mac || !deployment || !expected || expected !== token) throw notFound('answer file');
    const render = answerFiles[name];
    const boot = view.boot(deployment.boot);
    if (!render || !boot) throw notFound(`answer file ${name}`);
    const context = buildRenderContext({
      baseUrl,
      deployment,
      boot,
      machine: view.machine(mac),
      defaults: view.defaults(),
      subnets: deps.subnets,
      token: expected,
      urls,
    });
    let body: string;
    try {
      body = render.render(context);
    } catch (error) {
      // A value the format cannot carry safely is refused, never passed through (render/escape.ts).
      if (error instanceof UnsafeValueError || error instanceof TemplateError)
        throw new HttpFailure(500, error.message);
      throw error;
    }
    sendText(response, render.contentType, body, method);
  }

  function imageJob(response: ServerResponse, [macText = '', token = '']: string[], method: string) {
    const mac = tryParseMac(macText);
    const deployment = mac === undefined ? undefined : view.deployment(mac);
    const expected = mac === undefined ? undefined : view.token(mac);
    const image = deployment?.image;
    if (mac === undefined || !deployment || !image || expected === undefined || expected !== token) {
      throw notFound('image job');
    }
    const host = effectiveHostSettings(view.defaults(), deployment);
    const imageUrl = image.url.startsWith('/') ? `${baseUrl}${image.url}` : image.url;
    let body: string;
    try {
      body = renderImageJob({
        mac,
        imageUrl,
        sha256: image.sha256,
        grow: image.grow,
        disk: host.disk,
        hooks: {
          installed: urls.hook(mac, token, 'installed'),
          failed: urls.hook(mac, token, 'failed'),
          progress: urls.hook(mac, token, 'progress'),
        },
      });
    } catch (error) {
      if (error instanceof UnsafeValueError) throw new HttpFailure(500, error.message);
      throw error;
    }
    sendText(response, 'text/x-shellscript; charset=utf-8', body, method);
  }

  async function hook(
    request: IncomingMessage,
    response: ServerResponse,
    [macText = '', token = '', what = '']: string[],
  ) {
    const mac = tryParseMac(macText);
    if (!mac || (what !== 'installed' && what !== 'failed' && what !== 'progress')) throw notFound('hook');
    const detail = (await readSmallBody(request)).trim();
    try {
      if (what === 'progress') {
        // bytes=N[&total=N]: form-encoded, as busybox wget --post-data sends it.
        const form = new URLSearchParams(detail);
        const bytes = Number(form.get('bytes'));
        const total = form.has('total') ? Number(form.get('total')) : undefined;
        if (!Number.isSafeInteger(bytes) || bytes < 0) throw new HttpFailure(400, 'send bytes=N');
        await deps.inventory.deployments.progress(
          mac,
          token,
          bytes,
          total !== undefined && total > 0 ? total : undefined,
        );
        sendText(response, 'text/plain; charset=utf-8', 'ok\n', 'GET');
        return;
      }
      const result = await deps.inventory.deployments.report(mac, token, what, detail || undefined);
      log.info({ mac, outcome: what, state: result.state }, 'phone-home');
      sendText(response, 'text/plain; charset=utf-8', `${result.state}\n`, 'GET');
    } catch (error) {
      if (error instanceof SmeltError && error.code === 'forbidden') {
        log.warn({ mac, from: request.socket.remoteAddress, outcome: what }, 'phone-home with a wrong token refused');
        throw new HttpFailure(403, 'wrong token');
      }
      if (error instanceof SmeltError && error.code === 'conflict') throw new HttpFailure(409, error.message);
      throw error;
    }
  }

  const server: Server = createServer((request, response) => {
    const started = process.hrtime.bigint();
    route(request, response).then(
      (kind) => {
        requests.inc({ route: kind, status: String(response.statusCode) });
        log.debug({ url: request.url, status: response.statusCode, ms: msSince(started) }, 'http');
      },
      (error: unknown) => {
        const failure =
          error instanceof HttpFailure
            ? error
            : error instanceof PathRefusedError
              ? new HttpFailure(403, `refused: ${error.reason}`)
              : new HttpFailure(500, 'internal error');
        if (failure.status === 500) log.error({ err: error, url: request.url }, 'machine-facing request failed');
        else
          log.debug({ url: request.url, status: failure.status, from: request.socket.remoteAddress }, failure.message);
        requests.inc({ route: 'error', status: String(failure.status) });
        if (response.headersSent) response.destroy();
        else
          sendText(
            response,
            'text/plain; charset=utf-8',
            `${failure.message}\n`,
            request.method ?? 'GET',
            failure.status,
          );
      },
    );
  });
  server.keepAliveTimeout = 5000;
  // After a burst of machines (a boot storm, a load test) the daemon gives back what it can: ~12 MiB measured.
  const reclaimer = reclaimWhenQuiet(server, { burst: 64, quietMs: 1000, reclaim: reclaimMemory });
  let address: Awaited<ReturnType<typeof listenHttp>>;
  try {
    address = await listenHttp(server, config.http.listen, 'machine-facing HTTP server');
  } catch (error) {
    reclaimer.close();
    await zeroCopy?.close();
    throw error;
  }
  baseUrl = deps.baseUrlFor(address.port);
  urls = machineUrls(baseUrl);
  log.info({ listen: `${address.host}:${String(address.port)}`, baseUrl }, 'http listening');
  return {
    address,
    baseUrl,
    close: async () => {
      reclaimer.close();
      const closed = new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
      server.closeAllConnections();
      // The threads hold duplicates of connections the server just closed: they stop sending into them.
      await zeroCopy?.close();
      await closed;
    },
  };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpFailure(400, 'bad percent-encoding in the path');
  }
}

function peerOf(request: IncomingMessage) {
  return { address: request.socket.remoteAddress ?? '', port: request.socket.remotePort ?? 0 };
}

function msSince(started: bigint): number {
  return Number((process.hrtime.bigint() - started) / 1000n) / 1000;
}

function sendText(response: ServerResponse, type: string, body: string, method: string, status = 200): void {
  response.statusCode = status;
  response.setHeader('Content-Type', type);
  response.setHeader('Content-Length', String(Buffer.byteLength(body)));
  // Rendered from the current state: a cache must never answer for us.
  response.setHeader('Cache-Control', 'no-store');
  response.end(method === 'HEAD' ? undefined : body);
}

async function readSmallBody(request: IncomingMessage, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpFailure(413, 'body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const contentTypes: Record<string, string> = {
  ipxe: 'text/plain; charset=utf-8',
  cfg: 'text/plain; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  iso: 'application/x-iso9660-image',
  efi: 'application/efi',
};

function contentTypeOf(path: string): string {
  const ext = path.slice(path.lastIndexOf('.') + 1).toLowerCase();
  return contentTypes[ext] ?? 'application/octet-stream';
}

function describeScript(spec: ScriptSpec): string {
  switch (spec.kind) {
    case 'installer':
      return `boot ${spec.what} (${spec.kernelUrl})`;
    case 'local':
      return 'boot from the local disk';
    case 'sanboot':
      return `boot the iSCSI root ${spec.uri}`;
    default:
      return spec.kind;
  }
}
