/**
 * The operator template language: values, lists, {{#each}}, {{#if}}/{{else}}, comments, escaping per format,
 * and errors that name the variable and the line. The real-tool checks of rendered operator templates live with
 * each format (preseed.test.ts, kickstart.test.ts, autoinstall.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RenderContext } from './context.ts';
import { UnsafeValueError } from './escape.ts';
import { TemplateError, compileTemplate } from './template.ts';
import type { TemplateFormat } from './template.ts';
import { fullContext, minimalContext, withDeployment } from './testdata/support.ts';

const full = fullContext('http://mirror.example.com/debian');

function render(source: string, format: TemplateFormat = 'yaml', context: RenderContext = full): string {
  return compileTemplate(source, 'test.tmpl', format).render(context);
}

/** Compiling (or, with a context, rendering) fails with this message. */
function fails(source: string, message: RegExp, format: TemplateFormat = 'yaml', context?: RenderContext): void {
  assert.throws(
    () => {
      const template = compileTemplate(source, 'test.tmpl', format);
      if (context) template.render(context);
    },
    (error: unknown) => error instanceof TemplateError && message.test(error.message),
    `${JSON.stringify(source)} should fail with ${String(message)}`,
  );
}

describe('template values', () => {
  test('each format escapes its own way', () => {
    assert.equal(render('host: {{ deployment.hostname }}\n'), 'host: "web1"\n');
    assert.equal(render('prefix: {{ deployment.network.prefix }}\n'), 'prefix: 24\n');
    assert.equal(
      render('d-i passwd/user-password-crypted password {{ deployment.passwordHash }}', 'preseed'),
      `d-i passwd/user-password-crypted password ${full.deployment.passwordHash ?? ''}`,
    );
    assert.equal(
      render('user --name={{ deployment.user }} --password={{ deployment.passwordHash }}', 'kickstart'),
      `user --name=ops --password='${full.deployment.passwordHash ?? ''}'`,
    );
    assert.equal(render('--prefix={{ deployment.network.prefix }}', 'kickstart'), '--prefix=24');
  });

  test('lists: a flow sequence in YAML, joined with | words or | commas elsewhere', () => {
    assert.equal(render('dns: {{ deployment.network.dns }}'), 'dns: ["10.0.0.1", "1.1.1.1"]');
    assert.equal(render('{{ deployment.network.dns | words }}', 'preseed'), '10.0.0.1 1.1.1.1');
    assert.equal(
      render('--nameserver={{ deployment.network.dns | commas }}', 'kickstart'),
      '--nameserver=10.0.0.1,1.1.1.1',
    );
    assert.equal(
      render('printf %s {{ deployment.sshKeys | shell | words }}', 'preseed'),
      `printf %s ${full.deployment.sshKeys.map((key) => `'${key}'`).join(' ')}`,
    );
  });

  test('| shell quotes a value for a shell command inside the file', () => {
    const context = withDeployment(full, { hostname: "it's $(reboot)" });
    assert.equal(render('echo {{ deployment.hostname | shell }}', 'preseed', context), `echo 'it'\\''s $(reboot)'`);
    assert.equal(render('- {{ deployment.hostname | shell }}', 'yaml', context), `- "'it'\\\\''s $(reboot)'"`);
  });

  test('values are never read as template syntax again', () => {
    const context = withDeployment(full, { hostname: '{{ urls.phoneHome }}', vars: { x: '{{#each a}}' } });
    assert.equal(
      render('{{ deployment.hostname }} {{ deployment.vars.x }}', 'preseed', context),
      '{{ urls.phoneHome }} {{#each a}}',
    );
  });

  test('operator variables', () => {
    assert.equal(render('rack {{ deployment.vars.rack }}', 'preseed'), 'rack r12');
    assert.equal(
      render('{{#if deployment.vars.rack}}yes{{/if}}{{#if deployment.vars.row}}no{{/if}}', 'preseed'),
      'yes',
    );
    fails(
      '{{ deployment.vars.row }}',
      /line 1: deployment\.vars\.row has no value \(the deployment has no such --var\)/,
      'yaml',
      full,
    );
  });

  test('line formats refuse line breaks in values', () => {
    const context = withDeployment(full, { hostname: 'a\nd-i passwd/root-login boolean true' });
    assert.throws(
      () => render('d-i netcfg/hostname string {{ deployment.hostname }}', 'preseed', context),
      UnsafeValueError,
    );
    assert.throws(() => render('network --hostname={{ deployment.hostname }}', 'kickstart', context), UnsafeValueError);
    assert.equal(
      render('h: {{ deployment.hostname }}', 'yaml', context),
      'h: "a\\nd-i passwd/root-login boolean true"',
    );
  });
});

describe('template blocks', () => {
  test('{{#each}} repeats for each item, `.` is the item; lines holding only a tag disappear', () => {
    const source = 'packages:\n{{#each deployment.packages}}\n  - {{ . }}\n{{/each}}\nend\n';
    assert.equal(render(source), 'packages:\n  - "curl"\n  - "vim"\nend\n');
    assert.equal(render('[{{#each deployment.packages}}<{{ . }}>{{/each}}]', 'preseed'), '[<curl><vim>]');
    assert.equal(render('{{#each deployment.packages}}x{{/each}}', 'preseed', minimalContext()), '');
  });

  test('{{#if}} and {{else}}: unset, empty strings, empty lists and maps are false', () => {
    const source = '{{#if deployment.disk}}disk {{ deployment.disk }}{{else}}first disk{{/if}}';
    assert.equal(render(source, 'preseed'), 'disk /dev/sda');
    assert.equal(render(source, 'preseed', minimalContext()), 'first disk');
    assert.equal(
      render('{{#if deployment.packages}}p{{/if}}{{#if deployment.vars}}v{{/if}}', 'preseed', minimalContext()),
      '',
    );
    const standalone = 'a\n  {{#if deployment.domain}}\nb\n  {{else}}\nc\n  {{/if}}\nd\n';
    assert.equal(render(standalone, 'preseed'), 'a\nb\nd\n');
    assert.equal(render(standalone, 'preseed', minimalContext()), 'a\nc\nd\n');
  });

  test('nested blocks and comments', () => {
    const source =
      '{{! comment }}\n{{#if deployment.sshKeys}}\n{{#each deployment.sshKeys}}\nkey {{ . }} for {{ deployment.user }}\n{{/each}}\n{{/if}}\n';
    assert.equal(
      render(source, 'preseed', minimalContext()),
      `key ${minimalContext().deployment.sshKeys[0] ?? ''} for smelt\n`,
    );
  });
});

describe('template errors name the problem and the line', () => {
  test('unknown variables fail at compile time, even in a branch not taken', () => {
    fails('a\nb\nhost {{ deployment.hostnme }}', /^test\.tmpl line 3: unknown variable "deployment\.hostnme"$/);
    fails('{{#if deployment.disk}}\n{{ deployment.dsk }}\n{{/if}}', /line 2: unknown variable "deployment\.dsk"/);
    fails('{{ nothing }}', /unknown variable "nothing"/);
  });

  test('nothing reaches JavaScript objects: no prototype, no constructor, no code', () => {
    fails('{{ constructor }}', /unknown variable "constructor"/);
    fails('{{ deployment.__proto__ }}', /unknown variable/);
    fails('{{ deployment.hostname.length }}', /unknown variable "deployment\.hostname\.length"/);
    fails('{{ deployment.vars.constructor }}', /deployment\.vars\.constructor has no value/, 'yaml', full);
    fails('{{ deployment.hostname() }}', /not a variable name/);
    fails('{{ 1 + 1 }}', /not a variable name/);
  });

  test('misused names', () => {
    fails('{{ deployment }}', /deployment is a group of values/);
    fails('{{ deployment.vars }}', /deployment\.vars is a group of values/);
    fails('{{ . }}', /"\." is only meaningful inside \{\{#each\}\}/);
    fails('{{#each deployment.hostname}}{{/each}}', /\{\{#each\}\} needs a list, and deployment\.hostname is not one/);
    fails('{{#if deployment}}{{/if}}', /\{\{#if\}\} needs a value/);
    fails('{{ deployment.packages }}', /deployment\.packages is a list: use \{\{#each/, 'preseed');
    fails('{{ deployment.hostname | words }}', /join a list, and deployment\.hostname is not one/, 'preseed');
    fails('{{ deployment.hostname | shell }}', /kickstart values are already shell-quoted/, 'kickstart');
    fails('{{ deployment.hostname | upper }}', /unknown filter "upper"/);
  });

  test('unbalanced blocks and broken tags', () => {
    fails('x\n{{#if deployment.disk}}\ny', /line 2: \{\{#if\}\} is never closed/);
    fails('{{#if deployment.disk}}\n{{/each}}', /line 2: \{\{\/each\}\} closes the \{\{#if\}\} of line 1/);
    fails('{{/if}}', /without an open/);
    fails('{{else}}', /\{\{else\}\} outside an \{\{#if\}\}/);
    fails('{{#if deployment.disk}}{{else}}{{else}}{{/if}}', /\{\{else\}\} outside/);
    fails('{{#with deployment}}', /unknown block/);
    fails('{{#each}}', /needs a variable name/);
    fails('a\nb {{ deployment.hostname\n}}', /line 2: a "\{\{" without its "\}\}"/);
  });

  test('an optional value that is not set says how to guard it', () => {
    fails(
      '{{ deployment.disk }}',
      /line 1: deployment\.disk has no value .*wrap it in \{\{#if deployment\.disk\}\}/,
      'preseed',
      minimalContext(),
    );
  });
});
