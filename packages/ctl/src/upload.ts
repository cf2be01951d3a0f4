import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { problemSchema } from '@smelt/shared/problem';
import got, { RequestError } from 'got';
import type { Connection } from './connection.ts';
import {
  CliFailure,
  exitCodes,
  httpStatusFailure,
  problemFailure,
  unreachableFailure,
  usageFailure,
} from './failure.ts';
import { createProgress } from './render/progress.ts';

export interface UploadedIso {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

/**
 * Streams a local ISO to the daemon (PUT /api/v1/isos/<name>): its SHA-256 first (read once, with progress), then
 * the upload with that digest, which the daemon verifies before keeping anything.
 */
export async function uploadIso(connection: Connection, name: string, file: string): Promise<UploadedIso> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) throw usageFailure(`--upload: no such file: ${file}`);
  const hashing = createProgress(`checksum ${basename(file)}`, info.size, process.stderr);
  const hash = createHash('sha256');
  let hashed = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    hashed += chunk.length;
    hashing.update(hashed);
  }
  hashing.finish();
  const digest = hash.digest('base64');
  const url = `${connection.server}/api/v1/isos/${encodeURIComponent(name)}`;
  const uploading = createProgress(`upload ${basename(file)}`, info.size, process.stderr);
  let response;
  try {
    response = await got
      .put(url, {
        body: createReadStream(file),
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(info.size),
          'content-digest': `sha-256=:${digest}:`,
          accept: 'application/json, application/problem+json',
          ...(connection.token ? { authorization: `Bearer ${connection.token}` } : {}),
        },
        responseType: 'text',
        throwHttpErrors: false,
        retry: { limit: 0 },
      })
      .on('uploadProgress', (progress: { transferred: number }) => {
        uploading.update(progress.transferred);
      });
  } catch (error) {
    if (error instanceof RequestError) throw unreachableFailure(connection.server, error.code, error.message);
    throw error;
  }
  if (response.statusCode !== 201) {
    const problem = problemSchema.safeParse(safeJson(response.body));
    if (problem.success) throw problemFailure(problem.data);
    throw httpStatusFailure(url, response.statusCode, response.statusMessage ?? '', response.body);
  }
  uploading.finish();
  const uploaded = safeJson(response.body) as UploadedIso | undefined;
  if (!uploaded || typeof uploaded.path !== 'string') {
    throw new CliFailure(exitCodes.serverFailure, [`${url} answered the upload with something unexpected`]);
  }
  return uploaded;
}

/** Removes an uploaded ISO again (when the boot that was to use it could not be made). */
export async function deleteIso(connection: Connection, name: string): Promise<void> {
  await got.delete(`${connection.server}/api/v1/isos/${encodeURIComponent(name)}`, {
    headers: connection.token ? { authorization: `Bearer ${connection.token}` } : {},
    throwHttpErrors: false,
    retry: { limit: 0 },
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
