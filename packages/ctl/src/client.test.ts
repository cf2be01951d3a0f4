import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from './client.ts';
import type { Connection } from './connection.ts';
import { CliFailure } from './failure.ts';
import { boot, deployment, isoBoot } from './testdata/resources.ts';
import { closedPort, problemBody, startFakeSmeltd, type Handler } from './testdata/fake-smeltd.ts';

let handler: Handler = () => ({ status: 500 });
const fake = await startFakeSmeltd((request) => handler(request));
after(() => fake.close());

function connection(withToken = true): Connection {
  return withToken
    ? { server: fake.url, token: 'T0K', serverSource: 'flag', tokenSource: 'flag' }
    : { server: fake.url, token: undefined, serverSource: 'flag', tokenSource: 'none' };
}

async function failureOf(promise: Promise<unknown>): Promise<CliFailure> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CliFailure) return error;
    throw error;
  }
  assert.fail('expected a CliFailure');
}

describe('client', () => {
  before(() => {
    fake.requests.length = 0;
  });

  test('sends the bearer token and returns the parsed answer', async () => {
    handler = () => ({ status: 200, body: boot });
    const result = await createClient(connection()).call('getBoot', { params: { name: 'debian12' } });
    assert.deepEqual(result, boot);
    const request = fake.requests.at(-1);
    assert.equal(request?.url.pathname, '/api/v1/boots/debian12');
    assert.equal(request.headers.authorization, 'Bearer T0K');
  });

  test('sends the body as JSON, parsed by the shared schema first (canonical MAC)', async () => {
    handler = () => ({ status: 201, body: deployment });
    await createClient(connection()).call('createDeployment', {
      body: { mac: 'AA-BB-CC-DD-EE-01', boot: 'debian12', netmask: '24' },
    });
    const request = fake.requests.at(-1);
    assert.equal(request?.method, 'POST');
    assert.deepEqual(JSON.parse(request.body), {
      mac: 'aa:bb:cc:dd:ee:01',
      boot: 'debian12',
      netmask: '255.255.255.0',
    });
  });

  test('list follows next cursors and passes filters', async () => {
    handler = (request) =>
      request.url.searchParams.get('cursor') === 'page2'
        ? { status: 200, body: { items: [isoBoot], next: null } }
        : { status: 200, body: { items: [boot], next: 'page2' } };
    const items = await createClient(connection()).list('listBoots', { kind: 'installer' });
    assert.deepEqual(
      items.map((item) => item.name),
      ['debian12', 'alma9'],
    );
    const [first, second] = fake.requests.slice(-2);
    assert.ok(first && second);
    assert.equal(first.url.searchParams.get('kind'), 'installer');
    assert.equal(first.url.searchParams.get('cursor'), null);
    assert.equal(second.url.searchParams.get('cursor'), 'page2');
    assert.equal(second.url.searchParams.get('kind'), 'installer');
  });

  test('a problem+json answer becomes its exit code and field errors', async () => {
    handler = () =>
      problemBody('invalid_request', 400, 'the deployment is not valid', [
        { in: 'body', path: 'address', message: '"x" is not an IPv4 address' },
      ]);
    const failure = await failureOf(createClient(connection()).call('getDeployment', { params: { ref: 'web1' } }));
    assert.equal(failure.exitCode, 2);
    assert.deepEqual(failure.lines, [
      'Error: the deployment is not valid',
      '  body.address: "x" is not an IPv4 address',
    ]);

    handler = () => problemBody('not_found', 404, 'no deployment "web9"');
    assert.equal(
      (await failureOf(createClient(connection()).call('getDeployment', { params: { ref: 'web9' } }))).exitCode,
      3,
    );

    handler = () => problemBody('conflict', 409, 'boot "debian12" exists');
    const conflict = await failureOf(
      createClient(connection()).call('createBoot', { body: { name: 'x', kind: 'local' } }),
    );
    assert.equal(conflict.exitCode, 4);
  });

  test('unauthorized says where the token came from', async () => {
    handler = () => problemBody('unauthorized', 401, 'missing or wrong token');
    const failure = await failureOf(createClient(connection(false)).call('index', {}));
    assert.equal(failure.exitCode, 1);
    assert.equal(failure.lines[0], 'Error: missing or wrong token');
    assert.match(failure.lines[1] ?? '', /no token was sent/);
    assert.equal(fake.requests.at(-1)?.headers.authorization, undefined);
  });

  test('a non-problem error answer is reported with its status', async () => {
    handler = () => ({ status: 502, type: 'text/html', body: '<h1>Bad Gateway</h1>' });
    const failure = await failureOf(createClient(connection()).call('index', {}));
    assert.equal(failure.exitCode, 1);
    assert.match(failure.lines[0] ?? '', /answered 502/);
  });

  test('an answer that does not fit the schema is a server-side failure, not a crash', async () => {
    handler = () => ({ status: 200, body: { name: 'debian12' } });
    const failure = await failureOf(createClient(connection()).call('getBoot', { params: { name: 'debian12' } }));
    assert.equal(failure.exitCode, 1);
    assert.match(failure.lines[0] ?? '', /does not understand/);
  });

  test('a bad parameter is a usage error before anything is sent', async () => {
    const before = fake.requests.length;
    const failure = await failureOf(createClient(connection()).call('getMachine', { params: { mac: 'nonsense' } }));
    assert.equal(failure.exitCode, 2);
    assert.match(failure.lines[0] ?? '', /^Error: params\.mac: "nonsense" is not a MAC address/);
    assert.equal(fake.requests.length, before);
  });

  test('204 No Content resolves to undefined', async () => {
    handler = () => ({ status: 204 });
    const deleted: Promise<unknown> = createClient(connection()).call('deleteBoot', { params: { name: 'debian12' } });
    assert.equal(await deleted, undefined);
    assert.equal(fake.requests.at(-1)?.method, 'DELETE');
  });

  test('a closed port exits 5 and names the server', async () => {
    const server = `http://127.0.0.1:${await closedPort()}`;
    const failure = await failureOf(
      createClient({ server, token: undefined, serverSource: 'flag', tokenSource: 'none' }).call('index', {}),
    );
    assert.equal(failure.exitCode, 5);
    assert.equal(failure.lines[0], `Error: cannot reach smeltd at ${server}: connection refused (ECONNREFUSED)`);
  });

  test('a server that never answers times out with exit 5', async () => {
    handler = () => ({ status: 200, body: boot });
    const { createServer } = await import('node:net');
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    assert.ok(address !== null && typeof address === 'object');
    const server = `http://127.0.0.1:${address.port}`;
    try {
      const failure = await failureOf(
        createClient({ server, token: undefined, serverSource: 'flag', tokenSource: 'none' }, { timeoutMs: 200 }).call(
          'index',
          {},
        ),
      );
      assert.equal(failure.exitCode, 5);
      assert.match(failure.lines[0] ?? '', /cannot reach smeltd at http:\/\/127\.0\.0\.1:\d+: timed out/);
    } finally {
      silent.close();
    }
  });
});
