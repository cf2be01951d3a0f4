import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { healthSchema, routeListSchema, routes } from '@smelt/shared/api';
import { bootSchema } from '@smelt/shared/boot';
import { globalDefaultsSchema } from '@smelt/shared/defaults';
import { deploymentSchema } from '@smelt/shared/deployment';
import { machineSchema } from '@smelt/shared/machine';
import { pageSchema } from '@smelt/shared/page';
import { problemSchema } from '@smelt/shared/problem';
import type { FieldError, Problem, ProblemCode } from '@smelt/shared/problem';
import { configSchema } from '../config/schema.ts';
import { startDaemon } from '../daemon.ts';
import type { RunningDaemon } from '../daemon.ts';
import { createLogger } from '../log.ts';
import { ensureToken } from '../token.ts';

const tmp = mkdtempSync(join(tmpdir(), 'smelt-api-'));
const files = join(tmp, 'files');
mkdirSync(files);
const KERNEL = join(files, 'vmlinuz');
const INITRD = join(files, 'initrd.img');
writeFileSync(KERNEL, 'kernel');
writeFileSync(INITRD, 'initrd');

const config = configSchema.parse({ address: '127.0.0.1', dataDir: tmp, api: { listen: '127.0.0.1:0' } });
const log = createLogger('silent');
const { token } = ensureToken(tmp);

let daemon: RunningDaemon | undefined;
let base = '';

async function start(): Promise<void> {
  daemon = await startDaemon(config, log, '0.0.0-test');
  base = `http://127.0.0.1:${daemon.api.port}`;
}

async function stop(): Promise<void> {
  const running = daemon;
  daemon = undefined;
  await running?.close();
}

before(start);
after(async () => {
  await stop();
  rmSync(tmp, { recursive: true, force: true });
});

interface Reply {
  status: number;
  contentType: string;
  headers: Headers;
  /** The parsed JSON body; undefined when there is none. */
  body: unknown;
}

interface CallOptions {
  /** Sent as JSON with content-type application/json. */
  json?: unknown;
  /** Sent as is, with `contentType`. */
  raw?: string;
  contentType?: string;
  /** A token to send instead of the right one; null sends none. */
  token?: string | null;
}

async function call(method: string, path: string, options: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  const bearer = options.token === undefined ? token : options.token;
  if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
  let body: string | undefined;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] = options.contentType ?? 'application/json';
  } else if (options.raw !== undefined) {
    body = options.raw;
    if (options.contentType !== undefined) headers['content-type'] = options.contentType;
  }
  const response = await fetch(base + path, { method, headers, ...(body !== undefined && { body }) });
  const text = await response.text();
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    headers: response.headers,
    body: text === '' ? undefined : (JSON.parse(text) as unknown),
  };
}

/** Asserts a problem+json reply with this status and code, and returns the problem. */
function problem(reply: Reply, status: number, code: ProblemCode): Problem {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  assert.match(reply.contentType, /^application\/problem\+json\b/);
  const parsed = problemSchema.parse(reply.body);
  assert.equal(parsed.status, status);
  assert.equal(parsed.code, code);
  assert.equal(parsed.type, `urn:smelt:problem:${code}`);
  return parsed;
}

function errorsOf(p: Problem): FieldError[] {
  assert.ok(p.errors, `expected field errors in ${JSON.stringify(p)}`);
  return p.errors;
}

function firstError(p: Problem): FieldError {
  const [first] = errorsOf(p);
  assert.ok(first, 'expected at least one field error');
  return first;
}

function ok(reply: Reply, status: 200 | 201 | 204 = 200): unknown {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  if (status !== 204) assert.match(reply.contentType, /^application\/json\b/);
  return reply.body;
}

const bootPage = pageSchema(bootSchema);
const deploymentPage = pageSchema(deploymentSchema);
const machinePage = pageSchema(machineSchema);

const MAC1 = '52:54:00:12:34:56';
const MAC2 = '52:54:00:ab:cd:ef';
const MAC3 = '52:54:00:00:00:03';

describe('API', () => {
  describe('probes and auth', () => {
    test('/healthz answers without a token', async () => {
      const reply = await call('GET', '/healthz', { token: null });
      const health = healthSchema.parse(ok(reply));
      assert.equal(health.status, 'ok');
      assert.equal(health.version, '0.0.0-test');
      assert.equal(typeof health.uptimeSeconds, 'number');
      assert.ok(health.uptimeSeconds >= 0);
    });

    test('no token: 401 problem+json', async () => {
      const reply = await call('GET', '/api/v1/boots', { token: null });
      const p = problem(reply, 401, 'unauthorized');
      assert.equal(p.title, 'Missing or wrong API token');
      assert.equal(p.instance, '/api/v1/boots');
      assert.match(p.detail, /Authorization: Bearer <token>/);
      assert.equal(reply.headers.get('www-authenticate'), 'Bearer realm="smelt"');
    });

    test('a wrong token: 401 problem+json', async () => {
      const p = problem(await call('GET', '/api/v1/boots', { token: 'not-the-token-at-all' }), 401, 'unauthorized');
      assert.equal(p.detail, 'the API token is wrong');
    });

    test('a token that is a prefix of the right one is wrong', async () => {
      problem(await call('GET', '/api/v1', { token: token.slice(0, -1) }), 401, 'unauthorized');
    });

    test('a write without a token changes nothing', async () => {
      const reply = await call('POST', '/api/v1/boots', { token: null, json: { name: 'sneaky', kind: 'local' } });
      problem(reply, 401, 'unauthorized');
      problem(await call('GET', '/api/v1/boots/sneaky'), 404, 'not_found');
    });

    test('GET /api/v1 lists every route', async () => {
      const list = routeListSchema.parse(ok(await call('GET', '/api/v1')));
      assert.equal(list.version, '0.0.0-test');
      assert.equal(list.routes.length, Object.keys(routes).length);
      assert.deepEqual(
        list.routes.find((r) => r.path === '/api/v1/boots' && r.method === 'POST'),
        { method: 'POST', path: '/api/v1/boots', summary: 'Create a boot' },
      );
      const keys = list.routes.map((r) => `${r.method} ${r.path}`);
      assert.ok(keys.includes('GET /healthz'));
      assert.ok(keys.includes('PATCH /api/v1/deployments/:ref'));
      assert.ok(keys.includes('PUT /api/v1/defaults'));
      assert.equal(new Set(keys).size, keys.length);
    });
  });

  describe('boots', () => {
    test('create: 201 with defaults filled in, then GET shows it', async () => {
      const reply = await call('POST', '/api/v1/boots', {
        json: { name: 'debian', kernel: KERNEL, initrd: [INITRD], cmdline: 'auto=true' },
      });
      const boot = bootSchema.parse(ok(reply, 201));
      assert.equal(boot.name, 'debian');
      assert.equal(boot.kind, 'installer');
      assert.equal(boot.kernel, KERNEL);
      assert.deepEqual(boot.initrd, [INITRD]);
      assert.equal(boot.cmdline, 'auto=true');
      assert.equal(boot.createdAt, boot.updatedAt);
      assert.deepEqual(bootSchema.parse(ok(await call('GET', '/api/v1/boots/debian'))), boot);
    });

    test('a boot with a URL kernel is not checked on disk', async () => {
      const reply = await call('POST', '/api/v1/boots', {
        json: { name: 'netboot', kind: 'live', kernel: 'http://mirror.example/vmlinuz' },
      });
      assert.equal(bootSchema.parse(ok(reply, 201)).kernel, 'http://mirror.example/vmlinuz');
    });

    test('a duplicate name: 409', async () => {
      const p = problem(
        await call('POST', '/api/v1/boots', { json: { name: 'debian', kernel: KERNEL } }),
        409,
        'conflict',
      );
      assert.equal(p.detail, 'a boot named "debian" already exists');
    });

    test('a kernel that does not exist: 400 at kernel, nothing stored', async () => {
      const missing = join(files, 'no-such-kernel');
      const p = problem(
        await call('POST', '/api/v1/boots', { json: { name: 'ghost', kernel: missing } }),
        400,
        'invalid_request',
      );
      assert.deepEqual(p.errors, [
        { in: 'body', path: 'kernel', message: `no such file on the daemon's host: ${missing}` },
      ]);
      problem(await call('GET', '/api/v1/boots/ghost'), 404, 'not_found');
    });

    test('an initrd that does not exist: 400 at initrd.1', async () => {
      const missing = join(files, 'no-such-initrd');
      const reply = await call('POST', '/api/v1/boots', {
        json: { name: 'ghost', kernel: KERNEL, initrd: [INITRD, missing] },
      });
      const p = problem(reply, 400, 'invalid_request');
      assert.equal(firstError(p).path, 'initrd.1');
    });

    test('a directory is not a kernel', async () => {
      const p = problem(
        await call('POST', '/api/v1/boots', { json: { name: 'ghost', kernel: files } }),
        400,
        'invalid_request',
      );
      assert.equal(firstError(p).path, 'kernel');
    });

    test('a relative kernel path: 400 at kernel', async () => {
      const p = problem(
        await call('POST', '/api/v1/boots', { json: { name: 'ghost', kernel: 'vmlinuz' } }),
        400,
        'invalid_request',
      );
      assert.equal(errorsOf(p).length, 1);
      assert.equal(firstError(p).in, 'body');
      assert.equal(firstError(p).path, 'kernel');
      assert.match(firstError(p).message, /must be an absolute path or an http\(s\) URL/);
    });

    test('schema errors are all reported with their paths', async () => {
      const reply = await call('POST', '/api/v1/boots', { json: { name: 'Bad Name', kind: 'floppy', kernel: KERNEL } });
      const p = problem(reply, 400, 'invalid_request');
      assert.deepEqual(
        errorsOf(p).map((e) => `${e.in}:${e.path}`),
        ['body:name', 'body:kind'],
      );
    });

    test('PATCH changes a field and keeps the rest', async () => {
      const boot = bootSchema.parse(
        ok(
          await call('PATCH', '/api/v1/boots/debian', { json: { cmdline: 'console=ttyS0', description: 'Debian 12' } }),
        ),
      );
      assert.equal(boot.cmdline, 'console=ttyS0');
      assert.equal(boot.description, 'Debian 12');
      assert.equal(boot.kernel, KERNEL);
      assert.deepEqual(boot.initrd, [INITRD]);
    });

    test('PATCH with null clears a field (application/merge-patch+json)', async () => {
      const reply = await call('PATCH', '/api/v1/boots/debian', {
        json: { description: null },
        contentType: 'application/merge-patch+json',
      });
      const boot = bootSchema.parse(ok(reply));
      assert.equal(boot.description, undefined);
      assert.equal(Object.hasOwn(boot, 'description'), false);
      assert.equal(bootSchema.parse(ok(await call('GET', '/api/v1/boots/debian'))).description, undefined);
    });

    test('PATCH that leaves an installer without a kernel: 400 and nothing stored', async () => {
      const p = problem(
        await call('PATCH', '/api/v1/boots/debian', { json: { kernel: null } }),
        400,
        'invalid_request',
      );
      assert.equal(firstError(p).path, 'kernel');
      assert.equal(bootSchema.parse(ok(await call('GET', '/api/v1/boots/debian'))).kernel, KERNEL);
    });

    test('PATCH to a missing kernel: 400 and nothing stored', async () => {
      const missing = join(files, 'gone');
      problem(await call('PATCH', '/api/v1/boots/debian', { json: { kernel: missing } }), 400, 'invalid_request');
      assert.equal(bootSchema.parse(ok(await call('GET', '/api/v1/boots/debian'))).kernel, KERNEL);
    });

    test('PATCH cannot rename', async () => {
      const p = problem(
        await call('PATCH', '/api/v1/boots/debian', { json: { name: 'other' } }),
        400,
        'invalid_request',
      );
      assert.equal(firstError(p).in, 'body');
    });

    test('GET, PATCH and DELETE of an unknown boot: 404', async () => {
      const p = problem(await call('GET', '/api/v1/boots/nope'), 404, 'not_found');
      assert.equal(p.detail, 'no boot named "nope"');
      problem(await call('PATCH', '/api/v1/boots/nope', { json: { cmdline: 'x' } }), 404, 'not_found');
      problem(await call('DELETE', '/api/v1/boots/nope'), 404, 'not_found');
    });

    test('a bad name in the path: 400 in params', async () => {
      const p = problem(await call('GET', '/api/v1/boots/Not_Valid'), 400, 'invalid_request');
      assert.equal(firstError(p).in, 'params');
      assert.equal(firstError(p).path, 'name');
    });
  });

  describe('deployments', () => {
    test('create with a dash-form MAC: stored canonical, named after the MAC, provisioning', async () => {
      const reply = await call('POST', '/api/v1/deployments', { json: { mac: '52-54-00-12-34-56', boot: 'debian' } });
      const deployment = deploymentSchema.parse(ok(reply, 201));
      assert.equal(deployment.mac, MAC1);
      assert.equal(deployment.name, '52-54-00-12-34-56');
      assert.equal(deployment.state, 'provisioning');
      assert.equal(deployment.boot, 'debian');
    });

    test('the machine is registered and shows the deployment', async () => {
      const machine = machineSchema.parse(ok(await call('GET', `/api/v1/machines/${MAC1}`)));
      assert.equal(machine.mac, MAC1);
      assert.equal(machine.state, 'provisioning');
      assert.equal(machine.deployment, '52-54-00-12-34-56');
      assert.deepEqual(machine.labels, {});
    });

    test('without a name, a deployment is named after its hostname', async () => {
      const reply = await call('POST', '/api/v1/deployments', {
        json: { mac: '5254.00ab.cdef', boot: 'debian', hostname: 'Web01.lab.example', address: '10.0.0.21' },
      });
      const deployment = deploymentSchema.parse(ok(reply, 201));
      assert.equal(deployment.name, 'web01');
      assert.equal(deployment.mac, MAC2);
      assert.equal(deployment.address, '10.0.0.21');
    });

    test('an unknown boot: 400 naming the boots there are', async () => {
      const reply = await call('POST', '/api/v1/deployments', { json: { mac: MAC3, boot: 'centos' } });
      const p = problem(reply, 400, 'invalid_request');
      assert.equal(errorsOf(p).length, 1);
      assert.equal(firstError(p).in, 'body');
      assert.equal(firstError(p).path, 'boot');
      assert.equal(firstError(p).message, 'no boot named "centos" (boots: debian, netboot)');
      problem(await call('GET', `/api/v1/deployments/${MAC3}`), 404, 'not_found');
      problem(await call('GET', `/api/v1/machines/${MAC3}`), 404, 'not_found');
    });

    test('a duplicate address: 409', async () => {
      const reply = await call('POST', '/api/v1/deployments', {
        json: { mac: MAC3, boot: 'debian', address: '10.0.0.21' },
      });
      const p = problem(reply, 409, 'conflict');
      assert.match(p.detail, /10\.0\.0\.21/);
      assert.match(p.detail, /web01/);
    });

    test('a duplicate name: 409', async () => {
      const reply = await call('POST', '/api/v1/deployments', { json: { mac: MAC3, boot: 'debian', name: 'web01' } });
      const p = problem(reply, 409, 'conflict');
      assert.match(p.detail, /"web01"/);
      problem(await call('GET', `/api/v1/deployments/${MAC3}`), 404, 'not_found');
    });

    test('the same MAC twice, in another spelling: 409', async () => {
      const reply = await call('POST', '/api/v1/deployments', { json: { mac: '525400123456', boot: 'debian' } });
      const p = problem(reply, 409, 'conflict');
      assert.match(p.detail, /52:54:00:12:34:56/);
    });

    test('a MAC that is not one: 400 quoting it', async () => {
      const p = problem(
        await call('POST', '/api/v1/deployments', { json: { mac: 'aa:bb', boot: 'debian' } }),
        400,
        'invalid_request',
      );
      assert.equal(firstError(p).path, 'mac');
      assert.match(firstError(p).message, /^"aa:bb" is not a MAC address/);
    });

    test('GET by name and by MAC in every spelling', async () => {
      const byName = deploymentSchema.parse(ok(await call('GET', '/api/v1/deployments/web01')));
      assert.equal(byName.mac, MAC2);
      for (const ref of [MAC2, encodeURIComponent(MAC2), '52-54-00-AB-CD-EF', '5254.00ab.cdef', '525400ABCDEF']) {
        assert.deepEqual(deploymentSchema.parse(ok(await call('GET', `/api/v1/deployments/${ref}`))), byName, ref);
      }
      const byDashName = deploymentSchema.parse(ok(await call('GET', '/api/v1/deployments/52-54-00-12-34-56')));
      assert.equal(byDashName.mac, MAC1);
    });

    test('GET of an unknown deployment: 404', async () => {
      const p = problem(await call('GET', '/api/v1/deployments/nope'), 404, 'not_found');
      assert.equal(p.detail, 'no deployment named "nope"');
    });

    test('list with filters', async () => {
      const page = deploymentPage.parse(ok(await call('GET', '/api/v1/deployments?boot=debian&state=provisioning')));
      assert.deepEqual(
        page.items.map((d) => d.name),
        ['52-54-00-12-34-56', 'web01'],
      );
      assert.equal(page.next, null);
      const none = deploymentPage.parse(ok(await call('GET', '/api/v1/deployments?state=deployed')));
      assert.deepEqual(none.items, []);
    });

    test('PATCH by MAC in another spelling, with null clearing a field', async () => {
      const reply = await call('PATCH', '/api/v1/deployments/52-54-00-ab-cd-ef', {
        json: { hostname: null, dns: ['1.1.1.1'], netmask: '24' },
      });
      const deployment = deploymentSchema.parse(ok(reply));
      assert.equal(deployment.hostname, undefined);
      assert.equal(Object.hasOwn(deployment, 'hostname'), false);
      assert.deepEqual(deployment.dns, ['1.1.1.1']);
      assert.equal(deployment.netmask, '255.255.255.0');
      assert.equal(deployment.name, 'web01');
      assert.equal(deployment.address, '10.0.0.21');
      const stored = deploymentSchema.parse(ok(await call('GET', '/api/v1/deployments/web01')));
      assert.deepEqual(stored, deployment);
    });

    test('PATCH that makes it invalid: 400 and nothing stored', async () => {
      const before = deploymentSchema.parse(ok(await call('GET', '/api/v1/deployments/web01')));
      const p = problem(
        await call('PATCH', '/api/v1/deployments/web01', { json: { boot: null, dns: null } }),
        400,
        'invalid_request',
      );
      assert.equal(firstError(p).path, 'boot');
      assert.deepEqual(deploymentSchema.parse(ok(await call('GET', '/api/v1/deployments/web01'))), before);
    });

    test('PATCH to an unknown boot: 400 and nothing stored', async () => {
      const p = problem(
        await call('PATCH', '/api/v1/deployments/web01', { json: { boot: 'centos', dns: null } }),
        400,
        'invalid_request',
      );
      assert.equal(firstError(p).path, 'boot');
      const stored = deploymentSchema.parse(ok(await call('GET', '/api/v1/deployments/web01')));
      assert.equal(stored.boot, 'debian');
      assert.deepEqual(stored.dns, ['1.1.1.1']);
    });

    test("PATCH to another deployment's name: 409 and nothing stored", async () => {
      const reply = await call('PATCH', `/api/v1/deployments/${MAC1}`, { json: { name: 'web01' } });
      problem(reply, 409, 'conflict');
      assert.equal(
        deploymentSchema.parse(ok(await call('GET', `/api/v1/deployments/${MAC1}`))).name,
        '52-54-00-12-34-56',
      );
    });

    test('PATCH cannot change the MAC', async () => {
      const p = problem(
        await call('PATCH', '/api/v1/deployments/web01', { json: { mac: MAC3 } }),
        400,
        'invalid_request',
      );
      assert.equal(firstError(p).in, 'body');
      assert.equal(deploymentSchema.parse(ok(await call('GET', '/api/v1/deployments/web01'))).mac, MAC2);
    });

    test('PATCH renames, and the new name finds it', async () => {
      const reply = await call('PATCH', `/api/v1/deployments/${MAC1}`, { json: { name: 'db01' } });
      assert.equal(deploymentSchema.parse(ok(reply)).name, 'db01');
      assert.equal(deploymentSchema.parse(ok(await call('GET', '/api/v1/deployments/db01'))).mac, MAC1);
      problem(await call('GET', '/api/v1/deployments/52-54-00-12-34-56-x'), 404, 'not_found');
      assert.equal(machineSchema.parse(ok(await call('GET', `/api/v1/machines/${MAC1}`))).deployment, 'db01');
    });

    test('deleting a boot in use: 409 naming the deployments', async () => {
      const p = problem(await call('DELETE', '/api/v1/boots/debian'), 409, 'conflict');
      assert.equal(p.detail, 'boot "debian" is used by deployments db01, web01; delete or change them first');
      assert.equal(bootSchema.parse(ok(await call('GET', '/api/v1/boots/debian'))).name, 'debian');
    });

    test('DELETE by MAC in another spelling frees the machine', async () => {
      const reply = await call('DELETE', '/api/v1/deployments/525400ABCDEF');
      ok(reply, 204);
      assert.equal(reply.body, undefined);
      problem(await call('GET', '/api/v1/deployments/web01'), 404, 'not_found');
      const machine = machineSchema.parse(ok(await call('GET', `/api/v1/machines/${MAC2}`)));
      assert.equal(machine.state, 'free');
      assert.equal(machine.deployment, null);
      problem(await call('DELETE', '/api/v1/deployments/525400ABCDEF'), 404, 'not_found');
    });

    test('the address is free again once its deployment is gone', async () => {
      const reply = await call('POST', '/api/v1/deployments', {
        json: { mac: MAC3, boot: 'debian', address: '10.0.0.21' },
      });
      assert.equal(deploymentSchema.parse(ok(reply, 201)).address, '10.0.0.21');
    });

    test('an iSCSI base on a daemon that makes no disks, or an iSCSI root naming nothing: 400 with what to do', async () => {
      const mac = '52:54:00:00:00:99';
      const based = problem(
        await call('POST', '/api/v1/deployments', {
          json: { mac, boot: 'debian', type: 'live', live: { iscsi: { base: '/images/base.img' } } },
        }),
        400,
        'invalid_request',
      );
      assert.deepEqual(
        errorsOf(based).map((e) => `${e.in}.${e.path}`),
        ['body.live.iscsi.base'],
      );
      assert.match(errorsOf(based)[0]?.message ?? '', /iscsi\.enabled/);
      const empty = problem(
        await call('POST', '/api/v1/deployments', { json: { mac, boot: 'debian', type: 'live', live: { iscsi: {} } } }),
        400,
        'invalid_request',
      );
      assert.match(errorsOf(empty)[0]?.message ?? '', /server and target\), or a base image/);
      problem(await call('GET', `/api/v1/deployments/${mac}`), 404, 'not_found');
    });

    test('DELETE by name', async () => {
      ok(await call('DELETE', '/api/v1/deployments/52-54-00-00-00-03'), 204);
      problem(await call('GET', `/api/v1/deployments/${MAC3}`), 404, 'not_found');
    });
  });

  describe('machines', () => {
    test('create: 201, canonical MAC, free', async () => {
      const reply = await call('POST', '/api/v1/machines', {
        json: { mac: 'AA-BB-CC-DD-EE-01', labels: { rack: 'r1' } },
      });
      const machine = machineSchema.parse(ok(reply, 201));
      assert.equal(machine.mac, 'aa:bb:cc:dd:ee:01');
      assert.equal(machine.state, 'free');
      assert.equal(machine.deployment, null);
      assert.deepEqual(machine.labels, { rack: 'r1' });
    });

    test('a duplicate, in another spelling: 409', async () => {
      problem(await call('POST', '/api/v1/machines', { json: { mac: 'aabbccddee01' } }), 409, 'conflict');
    });

    test('GET by MAC in another spelling', async () => {
      const machine = machineSchema.parse(ok(await call('GET', '/api/v1/machines/AABB.CCDD.EE01')));
      assert.equal(machine.mac, 'aa:bb:cc:dd:ee:01');
    });

    test('a path that is not a MAC: 400 in params', async () => {
      const p = problem(await call('GET', '/api/v1/machines/not-a-mac'), 400, 'invalid_request');
      assert.equal(firstError(p).in, 'params');
      assert.equal(firstError(p).path, 'mac');
    });

    test('PATCH replaces the labels', async () => {
      const reply = await call('PATCH', '/api/v1/machines/aa:bb:cc:dd:ee:01', {
        json: { labels: { rack: 'r2', row: 'b' } },
      });
      assert.deepEqual(machineSchema.parse(ok(reply)).labels, { rack: 'r2', row: 'b' });
    });

    test('deleting a machine with a deployment: 409', async () => {
      const p = problem(await call('DELETE', `/api/v1/machines/${MAC1}`), 409, 'conflict');
      assert.match(p.detail, /"db01"/);
      assert.equal(machineSchema.parse(ok(await call('GET', `/api/v1/machines/${MAC1}`))).state, 'provisioning');
    });

    test('?state=free lists only free machines, in MAC order', async () => {
      const page = machinePage.parse(ok(await call('GET', '/api/v1/machines?state=free')));
      assert.deepEqual(
        page.items.map((m) => m.mac),
        [MAC3, MAC2, 'aa:bb:cc:dd:ee:01'],
      );
      assert.ok(page.items.every((m) => m.state === 'free' && m.deployment === null));
      const provisioning = machinePage.parse(ok(await call('GET', '/api/v1/machines?state=provisioning')));
      assert.deepEqual(
        provisioning.items.map((m) => m.mac),
        [MAC1],
      );
    });

    test('a state that does not exist: 400 in query', async () => {
      const p = problem(await call('GET', '/api/v1/machines?state=lost'), 400, 'invalid_request');
      assert.equal(firstError(p).in, 'query');
      assert.equal(firstError(p).path, 'state');
    });

    test('DELETE a free machine', async () => {
      ok(await call('DELETE', '/api/v1/machines/aa-bb-cc-dd-ee-01'), 204);
      problem(await call('GET', '/api/v1/machines/aa:bb:cc:dd:ee:01'), 404, 'not_found');
    });
  });

  describe('defaults', () => {
    test('GET is {} at first', async () => {
      assert.deepEqual(ok(await call('GET', '/api/v1/defaults')), {});
    });

    test('PUT replaces them', async () => {
      const defaults = { gateway: '10.0.0.1', dns: ['10.0.0.1'], netmask: '24', vars: { site: 'lab' } };
      const expected = { gateway: '10.0.0.1', dns: ['10.0.0.1'], netmask: '255.255.255.0', vars: { site: 'lab' } };
      assert.deepEqual(
        globalDefaultsSchema.parse(ok(await call('PUT', '/api/v1/defaults', { json: defaults }))),
        expected,
      );
      assert.deepEqual(ok(await call('GET', '/api/v1/defaults')), expected);
      const replaced = { gateway: '10.0.0.254', netmask: '255.255.255.0', vars: { site: 'lab' } };
      assert.deepEqual(ok(await call('PUT', '/api/v1/defaults', { json: replaced })), replaced);
      assert.deepEqual(ok(await call('GET', '/api/v1/defaults')), replaced);
    });

    test('PATCH merges, null clearing', async () => {
      const reply = await call('PATCH', '/api/v1/defaults', { json: { vars: null, ntp: ['pool.ntp.org'] } });
      const expected = { gateway: '10.0.0.254', netmask: '255.255.255.0', ntp: ['pool.ntp.org'] };
      assert.deepEqual(ok(reply), expected);
      assert.deepEqual(ok(await call('GET', '/api/v1/defaults')), expected);
    });

    test('invalid defaults: 400 and nothing stored', async () => {
      const before = ok(await call('GET', '/api/v1/defaults'));
      const p = problem(await call('PUT', '/api/v1/defaults', { json: { gateway: 'router' } }), 400, 'invalid_request');
      assert.equal(firstError(p).path, 'gateway');
      problem(await call('PATCH', '/api/v1/defaults', { json: { boot: 'debian' } }), 400, 'invalid_request');
      assert.deepEqual(ok(await call('GET', '/api/v1/defaults')), before);
    });
  });

  describe('pagination', () => {
    const names = ['page-c', 'page-a', 'page-e', 'page-b', 'page-d'];

    test('create 5 boots', async () => {
      for (const name of names) ok(await call('POST', '/api/v1/boots', { json: { name, kind: 'local' } }), 201);
    });

    test('?limit=2 pages through with next cursors until null, each item once, in name order', async () => {
      const seen: string[] = [];
      const cursors: (string | null)[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 10; pages++) {
        const query = `?kind=local&limit=2${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
        const page = bootPage.parse(ok(await call('GET', `/api/v1/boots${query}`)));
        assert.ok(page.items.length <= 2);
        seen.push(...page.items.map((b) => b.name));
        cursors.push(page.next);
        cursor = page.next;
        if (cursor === null) break;
      }
      assert.deepEqual(seen, ['page-a', 'page-b', 'page-c', 'page-d', 'page-e']);
      assert.deepEqual(cursors, ['page-b', 'page-d', null]);
    });

    test('paging through everything gives every boot once, sorted', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 20; pages++) {
        const query = `?limit=3${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
        const page = bootPage.parse(ok(await call('GET', `/api/v1/boots${query}`)));
        seen.push(...page.items.map((b) => b.name));
        cursor = page.next;
        if (cursor === null) break;
      }
      assert.deepEqual(seen, ['debian', 'netboot', 'page-a', 'page-b', 'page-c', 'page-d', 'page-e']);
    });

    test('a limit equal to the count ends with next null', async () => {
      const page = bootPage.parse(ok(await call('GET', '/api/v1/boots?kind=local&limit=5')));
      assert.equal(page.items.length, 5);
      assert.equal(page.next, null);
    });
  });

  describe('bad requests', () => {
    test('?limit=0: 400 in query', async () => {
      const p = problem(await call('GET', '/api/v1/boots?limit=0'), 400, 'invalid_request');
      assert.deepEqual(
        errorsOf(p).map((e) => [e.in, e.path]),
        [['query', 'limit']],
      );
    });

    test('?limit=abc and ?limit=1001: 400 in query', async () => {
      for (const limit of ['abc', '1001', '1.5']) {
        const p = problem(await call('GET', `/api/v1/deployments?limit=${limit}`), 400, 'invalid_request');
        assert.equal(firstError(p).in, 'query', limit);
        assert.equal(firstError(p).path, 'limit', limit);
      }
    });

    test('an unknown query key: 400 in query', async () => {
      const p = problem(await call('GET', '/api/v1/boots?colour=blue'), 400, 'invalid_request');
      assert.equal(errorsOf(p).length, 1);
      assert.equal(firstError(p).in, 'query');
      assert.match(firstError(p).message, /colour/);
    });

    test('a repeated query key: 400 in query', async () => {
      const p = problem(await call('GET', '/api/v1/boots?limit=1&limit=2'), 400, 'invalid_request');
      assert.equal(firstError(p).in, 'query');
      assert.equal(firstError(p).path, 'limit');
    });

    test('an empty cursor: 400 in query', async () => {
      const p = problem(await call('GET', '/api/v1/boots?cursor='), 400, 'invalid_request');
      assert.deepEqual(p.errors, [{ in: 'query', path: 'cursor', message: 'must not be empty' }]);
    });

    test('a body that is not JSON: 400', async () => {
      const reply = await call('POST', '/api/v1/boots', { raw: '{"name": "x",', contentType: 'application/json' });
      const p = problem(reply, 400, 'invalid_request');
      assert.deepEqual(p.errors, [{ in: 'body', path: '', message: 'not valid JSON' }]);
    });

    test('no body where one is needed: 400', async () => {
      const p = problem(
        await call('POST', '/api/v1/boots', { contentType: 'application/json' }),
        400,
        'invalid_request',
      );
      assert.deepEqual(p.errors, [{ in: 'body', path: '', message: 'required' }]);
    });

    test('a JSON body that is not an object: 400 at the top level', async () => {
      const p = problem(await call('POST', '/api/v1/boots', { json: ['debian'] }), 400, 'invalid_request');
      assert.equal(firstError(p).in, 'body');
      assert.equal(firstError(p).path, '');
    });

    test('a body that is not application/json: 415', async () => {
      const reply = await call('POST', '/api/v1/boots', {
        raw: 'name=x',
        contentType: 'application/x-www-form-urlencoded',
      });
      const p = problem(reply, 415, 'unsupported_media_type');
      assert.match(p.detail, /application\/x-www-form-urlencoded/);
      problem(
        await call('POST', '/api/v1/boots', { raw: '{"name":"x","kind":"local"}', contentType: 'text/plain' }),
        415,
        'unsupported_media_type',
      );
      problem(await call('GET', '/api/v1/boots/x'), 404, 'not_found');
    });

    test('a body over 1 MiB: 413', async () => {
      const json = { name: 'big', kind: 'local', description: 'x'.repeat(1024 * 1024) };
      const p = problem(await call('POST', '/api/v1/boots', { json }), 413, 'payload_too_large');
      assert.match(p.detail, /1048576/);
      problem(await call('GET', '/api/v1/boots/big'), 404, 'not_found');
    });

    test('a chunked body over 1 MiB: 413', async () => {
      const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent === 0) controller.enqueue(new TextEncoder().encode('{"name":"big","kind":"local","description":"'));
          if (sent > 1.5 * 1024 * 1024) {
            controller.enqueue(new TextEncoder().encode('"}'));
            controller.close();
            return;
          }
          controller.enqueue(chunk);
          sent += chunk.length;
        },
      });
      const response = await fetch(`${base}/api/v1/boots`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: stream,
        duplex: 'half',
      });
      const body: unknown = await response.json();
      assert.equal(response.status, 413);
      assert.equal(problemSchema.parse(body).code, 'payload_too_large');
      // The rest of the body was not read, so the connection must not be reused for the next request.
      assert.equal(response.headers.get('connection'), 'close');
      problem(await call('GET', '/api/v1/boots/big'), 404, 'not_found');
    });

    test('an unknown path: 404 problem', async () => {
      const p = problem(await call('GET', '/api/v1/nope'), 404, 'not_found');
      assert.equal(p.detail, 'no API route GET /api/v1/nope; GET /api/v1 lists them');
      assert.equal(p.instance, '/api/v1/nope');
      problem(await call('GET', '/nothing-here', { token: null }), 404, 'not_found');
    });

    test('a wrong method: 405 problem', async () => {
      const p = problem(await call('PUT', '/api/v1/boots', { json: {} }), 405, 'method_not_allowed');
      assert.equal(p.instance, '/api/v1/boots');
      problem(await call('DELETE', '/api/v1/defaults'), 405, 'method_not_allowed');
    });

    test('a 405 names the allowed methods in Allow (RFC 9110 §15.5.6)', async () => {
      const reply = await call('PUT', '/api/v1/boots', { json: {} });
      assert.equal(reply.status, 405);
      assert.equal(reply.headers.get('allow'), 'HEAD, GET, POST');
    });
  });

  describe('restart', () => {
    test('closing the daemon and starting it on the same dataDir keeps everything', async () => {
      const snapshot = async () => ({
        boots: ok(await call('GET', '/api/v1/boots')),
        deployments: ok(await call('GET', '/api/v1/deployments')),
        machines: ok(await call('GET', '/api/v1/machines')),
        defaults: ok(await call('GET', '/api/v1/defaults')),
      });
      const before = await snapshot();
      assert.equal(bootPage.parse(before.boots).items.length, 7);
      assert.equal(deploymentPage.parse(before.deployments).items.length, 1);
      assert.equal(machinePage.parse(before.machines).items.length, 3);

      await stop();
      assert.equal(ensureToken(tmp).token, token);
      await start();

      assert.deepEqual(await snapshot(), before);
      const deployment = deploymentSchema.parse(ok(await call('GET', `/api/v1/deployments/${MAC1}`)));
      assert.equal(deployment.name, 'db01');
      assert.equal(deployment.state, 'provisioning');
    });

    test('the restarted daemon still refuses conflicts from before', async () => {
      problem(await call('POST', '/api/v1/boots', { json: { name: 'debian', kernel: KERNEL } }), 409, 'conflict');
      problem(await call('POST', '/api/v1/deployments', { json: { mac: MAC1, boot: 'debian' } }), 409, 'conflict');
    });
  });
});
