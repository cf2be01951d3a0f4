/**
 * Operator templates: an operator may replace a built-in answer file with a file of their own, written in this
 * small logic-less language. Nothing in a template is executed; it is parsed into text, placeholders and two kinds
 * of blocks, checked against the RenderContext's fields, and filled in. Values are escaped for the template's
 * format automatically (escape.ts) and never re-read as template syntax.
 *
 *   {{ deployment.hostname }}        a value; a typo or an unknown name is an error naming it and its line
 *   {{ deployment.sshKeys | shell }} filters, left to right: `shell` quotes for a shell command inside the file,
 *                                    `words` / `commas` join a list with spaces / commas
 *   {{#each deployment.packages}} {{ . }} {{/each}}   repeat for each item of a list; `.` is the item
 *   {{#if deployment.disk}} ... {{else}} ... {{/if}}  a value that is set and non-empty, a non-empty list or map
 *   {{! a comment }}
 *
 * A line holding nothing but a block tag or a comment disappears entirely, so blocks can sit on lines of their own.
 * A tag cannot span lines. There are no comparisons: `{{#if deployment.network.address}}` tells static from DHCP.
 * Escaping per format:
 *   preseed    the value must stay on its line (debconfValue); add `| shell` inside preseed/late_command etc.
 *   kickstart  every value is one shell word (shQuote): right for command options (shlex) and for %pre/%post
 *   yaml       every value is a complete double-quoted scalar (a list becomes a flow sequence) — write
 *              `hostname: {{ deployment.hostname }}`, never inside quotes of your own
 */
import type { RenderContext } from './context.ts';
import { debconfValue, lineValue, shQuote, yamlQuote } from './escape.ts';

export type TemplateFormat = 'preseed' | 'kickstart' | 'yaml';

export class TemplateError extends Error {
  readonly template: string;
  readonly line: number;

  constructor(template: string, line: number, message: string) {
    super(`${template} line ${line}: ${message}`);
    this.name = 'TemplateError';
    this.template = template;
    this.line = line;
  }
}

export interface CompiledTemplate {
  readonly name: string;
  readonly format: TemplateFormat;
  render(context: RenderContext): string;
}

// ---- What a template may name: the RenderContext's fields, checked against its type by `satisfies` ------------

type Leaf = 'value' | 'list' | 'map';
interface Shape {
  readonly [key: string]: Leaf | Shape;
}
type KeysOf<T> = T extends unknown ? keyof T : never;
type FieldOf<T, K extends PropertyKey> = T extends unknown ? (K extends keyof T ? T[K] : undefined) : never;
type FieldShape<V> = [V] extends [readonly unknown[]]
  ? 'list'
  : [V] extends [string | number | boolean]
    ? 'value'
    : string extends keyof V
      ? 'map'
      : ShapeOf<V>;
/** Every field of T (of every member, for a union like the network), as the template language sees it. */
type ShapeOf<T> = { readonly [K in KeysOf<T>]-?: FieldShape<NonNullable<FieldOf<T, K>>> };

const contextShape = {
  baseUrl: 'value',
  machine: { mac: 'value', arch: 'value', firmware: 'value' },
  deployment: {
    name: 'value',
    type: 'value',
    hostname: 'value',
    domain: 'value',
    network: {
      mode: 'value',
      address: 'value',
      netmask: 'value',
      prefix: 'value',
      gateway: 'value',
      dns: 'list',
    },
    ntp: 'list',
    packages: 'list',
    sshKeys: 'list',
    user: 'value',
    passwordHash: 'value',
    disk: 'value',
    mirror: 'value',
    proxy: 'value',
    vars: 'map',
  },
  boot: { name: 'value', kernelUrl: 'value', initrdUrls: 'list', cmdline: 'value', isoUrl: 'value' },
  urls: { answerFile: 'value', phoneHome: 'value', failed: 'value' },
} as const satisfies ShapeOf<RenderContext>;

// ---- Parsing ----------------------------------------------------------------------------------------------------

const filters = ['shell', 'words', 'commas'] as const;
type Filter = (typeof filters)[number];

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'value'; path: string; filters: Filter[]; line: number }
  | { kind: 'each'; path: string; body: Node[]; line: number }
  | { kind: 'if'; path: string; then: Node[]; else: Node[]; line: number };

type Tag =
  | { kind: 'comment' }
  | { kind: 'open'; block: 'each' | 'if'; path: string }
  | { kind: 'else' }
  | { kind: 'close'; block: 'each' | 'if' }
  | { kind: 'value'; path: string; filters: Filter[] };

const PATH = /^(?:\.|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)$/;
const TAG = /\{\{(.*?)\}\}/g;

export function compileTemplate(source: string, name: string, format: TemplateFormat): CompiledTemplate {
  const root: Node[] = [];
  // Open blocks, innermost last; `into` is where the next node goes.
  const stack: { node: Extract<Node, { kind: 'each' | 'if' }>; into: Node[] }[] = [];
  let into = root;
  function fail(line: number, message: string): never {
    throw new TemplateError(name, line, message);
  }

  const lines = source.split(/(?<=\n)/);
  lines.forEach((text, index) => {
    const line = index + 1;
    const matches = [...text.matchAll(TAG)];
    const rest = text.replace(TAG, '');
    if (rest.includes('{{')) fail(line, 'a "{{" without its "}}" (a tag cannot span lines)');
    const tags = matches.map((m) => parseTag(m[1] ?? '', line, fail));
    const standalone = tags.length === 1 && tags[0]?.kind !== 'value' && rest.trim() === '';
    let last = 0;
    matches.forEach((match, i) => {
      if (!standalone && match.index > last) into.push({ kind: 'text', text: text.slice(last, match.index) });
      last = match.index + match[0].length;
      const tag = tags[i];
      if (tag === undefined || tag.kind === 'comment') return;
      if (tag.kind === 'value') {
        checkValue(tag.path, tag.filters, line);
        into.push({ kind: 'value', path: tag.path, filters: tag.filters, line });
      } else if (tag.kind === 'open') {
        const leaf = lookup(tag.path, line);
        if (tag.block === 'each' && leaf !== 'list') fail(line, `{{#each}} needs a list, and ${tag.path} is not one`);
        if (tag.block === 'if' && typeof leaf === 'object') fail(line, `{{#if}} needs a value, ${tag.path} is a group`);
        const node: Extract<Node, { kind: 'each' | 'if' }> =
          tag.block === 'each'
            ? { kind: 'each', path: tag.path, body: [], line }
            : { kind: 'if', path: tag.path, then: [], else: [], line };
        into.push(node);
        stack.push({ node, into });
        into = node.kind === 'each' ? node.body : node.then;
      } else if (tag.kind === 'else') {
        const open = stack.at(-1);
        if (open?.node.kind !== 'if' || into === open.node.else) fail(line, '{{else}} outside an {{#if}}');
        else into = open.node.else;
      } else {
        const open = stack.pop();
        if (open === undefined) fail(line, `{{/${tag.block}}} without an open {{#${tag.block}}}`);
        else if (open.node.kind !== tag.block) {
          fail(line, `{{/${tag.block}}} closes the {{#${open.node.kind}}} of line ${open.node.line}`);
        } else into = open.into;
      }
    });
    if (!standalone && last < text.length) into.push({ kind: 'text', text: text.slice(last) });
  });
  const unclosed = stack.at(-1);
  if (unclosed) fail(unclosed.node.line, `{{#${unclosed.node.kind}}} is never closed`);

  // Names are checked while parsing, so a typo fails at compile time even inside a branch never taken.
  function lookup(path: string, line: number): Leaf | Shape {
    if (path === '.') {
      if (!stack.some((open) => open.node.kind === 'each')) fail(line, '"." is only meaningful inside {{#each}}');
      return 'value';
    }
    let shape: Leaf | Shape = contextShape;
    const parts = path.split('.');
    for (const [i, part] of parts.entries()) {
      if (shape === 'map' && i === parts.length - 1) return 'value';
      const next: Leaf | Shape | undefined =
        typeof shape === 'object' && Object.hasOwn(shape, part) ? shape[part] : undefined;
      if (next === undefined) fail(line, `unknown variable "${path}"`);
      shape = next;
    }
    return shape;
  }

  function checkValue(path: string, tagFilters: Filter[], line: number): void {
    const leaf = lookup(path, line);
    if (typeof leaf === 'object' || leaf === 'map') fail(line, `${path} is a group of values, not one value`);
    if (format === 'kickstart' && tagFilters.includes('shell')) {
      fail(line, 'kickstart values are already shell-quoted: drop "| shell"');
    }
    const joined = tagFilters.some((f) => f === 'words' || f === 'commas');
    if (joined && leaf !== 'list') fail(line, `"| words" and "| commas" join a list, and ${path} is not one`);
    if (leaf === 'list' && !joined && format !== 'yaml') {
      fail(line, `${path} is a list: use {{#each ${path}}} or add "| words" or "| commas"`);
    }
  }

  return {
    name,
    format,
    render: (context) => renderNodes(root, { context, items: [], name, format }),
  };
}

function parseTag(inner: string, line: number, fail: (line: number, message: string) => never): Tag {
  const tag = inner.trim();
  if (tag.startsWith('!')) return { kind: 'comment' };
  if (tag === 'else') return { kind: 'else' };
  const block = /^([#/])(each|if)(?:\s+(\S+))?$/.exec(tag);
  if (block) {
    const [, sigil, word, path] = block;
    const which = word === 'each' ? 'each' : 'if';
    if (sigil === '/') return path === undefined ? { kind: 'close', block: which } : fail(line, `bad tag {{${tag}}}`);
    if (path === undefined || !PATH.test(path)) return fail(line, `{{#${which}}} needs a variable name`);
    return { kind: 'open', block: which, path };
  }
  if (tag.startsWith('#') || tag.startsWith('/')) {
    return fail(line, `unknown block {{${tag}}}: only {{#each}} and {{#if}} (with {{else}}) exist`);
  }
  const [path = '', ...named] = tag.split('|').map((part) => part.trim());
  if (!PATH.test(path)) return fail(line, `not a variable name: {{${inner}}}`);
  const tagFilters = named.map((filter) =>
    (filters as readonly string[]).includes(filter)
      ? (filter as Filter)
      : fail(line, `unknown filter "${filter}" (known: ${filters.join(', ')})`),
  );
  return { kind: 'value', path, filters: tagFilters };
}

// ---- Rendering --------------------------------------------------------------------------------------------------

interface Scope {
  context: RenderContext;
  /** The items of the enclosing {{#each}} blocks, innermost last. */
  items: string[];
  name: string;
  format: TemplateFormat;
}

type Found = string | number | readonly string[] | Readonly<Record<string, unknown>> | undefined;

function resolve(path: string, scope: Scope): Found {
  if (path === '.') return scope.items.at(-1);
  let value: unknown = scope.context;
  for (const part of path.split('.')) {
    // Own properties only: nothing reaches Object.prototype (`constructor`, `__proto__`).
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value as Found;
}

function truthy(value: Found): boolean {
  if (value === undefined || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

function renderNodes(nodes: readonly Node[], scope: Scope): string {
  let out = '';
  for (const node of nodes) {
    if (node.kind === 'text') out += node.text;
    else if (node.kind === 'if') {
      out += renderNodes(truthy(resolve(node.path, scope)) ? node.then : node.else, scope);
    } else if (node.kind === 'each') {
      const list = resolve(node.path, scope);
      for (const item of Array.isArray(list) ? (list as readonly string[]) : []) {
        out += renderNodes(node.body, { ...scope, items: [...scope.items, item] });
      }
    } else out += renderValue(node, scope);
  }
  return out;
}

function renderValue(node: Extract<Node, { kind: 'value' }>, scope: Scope): string {
  const found = resolve(node.path, scope);
  if (found === undefined || (typeof found === 'object' && !Array.isArray(found))) {
    const hint = node.path.startsWith('deployment.vars.')
      ? 'the deployment has no such --var'
      : `it is not set for this deployment; wrap it in {{#if ${node.path}}}`;
    throw new TemplateError(scope.name, node.line, `${node.path} has no value (${hint})`);
  }
  let value: string | readonly string[] = typeof found === 'number' ? String(found) : (found as string | string[]);
  for (const filter of node.filters) {
    if (filter === 'shell') {
      value = typeof value === 'string' ? shQuote(value, node.path) : value.map((v) => shQuote(v, node.path));
    } else {
      value = typeof value === 'string' ? value : value.join(filter === 'words' ? ' ' : ',');
    }
  }
  switch (scope.format) {
    case 'yaml':
      if (typeof found === 'number' && node.filters.length === 0) return String(found);
      return typeof value === 'string'
        ? yamlQuote(value, node.path)
        : `[${value.map((v) => yamlQuote(v, node.path)).join(', ')}]`;
    case 'preseed':
      return debconfValue(node.path, joinedOnly(value));
    case 'kickstart':
      return shQuote(lineValue(node.path, joinedOnly(value)), node.path);
  }
}

function joinedOnly(value: string | readonly string[]): string {
  // checkValue guarantees lists are joined in line formats; join with spaces if that ever changes.
  return typeof value === 'string' ? value : value.join(' ');
}
