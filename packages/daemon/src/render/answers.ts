import { readFileSync } from 'node:fs';
import { renderAutoinstallMetaData, renderAutoinstallUserData } from './autoinstall.ts';
import type { RenderContext } from './context.ts';
import { renderKickstart } from './kickstart.ts';
import { renderPreseed } from './preseed.ts';
import { compileTemplate, type TemplateFormat } from './template.ts';

export interface AnswerFile {
  contentType: string;
  render: (context: RenderContext) => string;
}

/** The answer files a machine may fetch from /answers/<mac>/<token>/<name>, and the format of each template. */
const builtIn: Record<string, AnswerFile & { format?: TemplateFormat }> = {
  'preseed.cfg': { contentType: 'text/plain; charset=utf-8', render: renderPreseed, format: 'preseed' },
  'ks.cfg': { contentType: 'text/plain; charset=utf-8', render: renderKickstart, format: 'kickstart' },
  // NoCloud over HTTP (cloud-init datasource nocloud-net): user-data, meta-data and an empty vendor-data.
  'user-data': { contentType: 'text/cloud-config; charset=utf-8', render: renderAutoinstallUserData, format: 'yaml' },
  'meta-data': { contentType: 'text/plain; charset=utf-8', render: renderAutoinstallMetaData, format: 'yaml' },
  'vendor-data': { contentType: 'text/plain; charset=utf-8', render: () => '' },
};

export const answerFileNames = Object.keys(builtIn);

/**
 * The answer files, with the operator's templates (config `templates`, by file name) in place of the built-in
 * renderers. Templates are compiled once, at start: a syntax error or an unknown variable stops the daemon with
 * the template's name and line, instead of failing a machine mid-install.
 */
export function answerFiles(templates: Readonly<Record<string, string>> = {}): Record<string, AnswerFile | undefined> {
  const files: Record<string, AnswerFile | undefined> = { ...builtIn };
  for (const [name, path] of Object.entries(templates)) {
    const format = builtIn[name]?.format;
    if (!format)
      throw new Error(`templates.${name}: not an answer file with a template (${answerFileNames.join(', ')})`);
    const template = compileTemplate(readFileSync(path, 'utf8'), path, format);
    files[name] = {
      contentType: builtIn[name]?.contentType ?? 'text/plain',
      render: (context) => template.render(context),
    };
  }
  return files;
}
