import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CliFailure } from './failure.ts';
import { defaultServer, normalizeServerUrl, resolveConnection } from './connection.ts';

describe('normalizeServerUrl', () => {
  test('adds http:// and drops trailing slashes', () => {
    assert.equal(normalizeServerUrl('10.0.0.2:7480'), 'http://10.0.0.2:7480');
    assert.equal(normalizeServerUrl('https://Smelt.Example/prefix/'), 'https://smelt.example/prefix');
    assert.equal(normalizeServerUrl(' http://[::1]:7480/ '), 'http://[::1]:7480');
  });

  test('rejects what is not an http(s) URL with a usage error', () => {
    for (const bad of ['ftp://host', 'http://', 'http://u:p@host', 'http://host/?q=1']) {
      assert.throws(
        () => normalizeServerUrl(bad),
        (error: unknown) => {
          assert.ok(error instanceof CliFailure);
          assert.equal(error.exitCode, 2);
          return true;
        },
      );
    }
  });
});

describe('resolveConnection', () => {
  const stored = { server: 'http://stored:7480', token: 'stored-token' };
  const env = { SMELT_SERVER: 'http://env:7480', SMELT_TOKEN: 'env-token' };

  test('flags beat the environment', () => {
    const connection = resolveConnection({ flags: { server: 'flag:1', token: 'flag-token' }, env, stored });
    assert.deepEqual(connection, {
      server: 'http://flag:1',
      token: 'flag-token',
      serverSource: 'flag',
      tokenSource: 'flag',
    });
  });

  test('the environment beats the config file', () => {
    const connection = resolveConnection({ flags: {}, env, stored });
    assert.equal(connection.server, 'http://env:7480');
    assert.equal(connection.token, 'env-token');
    assert.equal(connection.tokenSource, 'env');
  });

  test('the config file beats the default', () => {
    const connection = resolveConnection({ flags: {}, env: {}, stored });
    assert.deepEqual(connection, {
      server: 'http://stored:7480',
      token: 'stored-token',
      serverSource: 'config',
      tokenSource: 'config',
    });
  });

  test('nothing anywhere means the default server and no token', () => {
    const connection = resolveConnection({ flags: {}, env: { SMELT_SERVER: '', SMELT_TOKEN: ' ' }, stored: {} });
    assert.equal(connection.server, defaultServer);
    assert.equal(connection.serverSource, 'default');
    assert.equal(connection.token, undefined);
    assert.equal(connection.tokenSource, 'none');
  });

  test('the stored token is not sent to a different server', () => {
    const connection = resolveConnection({ flags: { server: 'http://elsewhere:7480' }, env: {}, stored });
    assert.equal(connection.token, undefined);
    assert.equal(connection.tokenSource, 'none');
  });

  test('the stored token is used when the flag names the stored server in another spelling', () => {
    const connection = resolveConnection({ flags: { server: 'stored:7480/' }, env: {}, stored });
    assert.equal(connection.token, 'stored-token');
  });

  test('a token stored without a server belongs to the default server', () => {
    const connection = resolveConnection({ flags: {}, env: {}, stored: { token: 't' } });
    assert.equal(connection.server, defaultServer);
    assert.equal(connection.token, 't');
  });
});
