import type { BatchOp, Collection } from './store.ts';

/** A batch op as the store's worker receives it: the value already JSON text, absent for a delete. */
export interface JsonOp {
  collection: Collection;
  key: string;
  json?: string;
  ifVersion?: number;
}

/**
 * A batch as one string for the store's worker thread (sqlite.ts → sqlite-worker.ts). Each op is a header line,
 * `collection ifVersion keyLength jsonLength` ('-' for absent), then the key and the value's JSON text, framed by
 * their lengths. Each value is serialised once, on the thread that made it, and never escaped again (a JSON
 * array of JSON strings escapes every quote twice); the worker stores the text as it arrives, unparsed.
 */
export function encodeBatch(ops: readonly BatchOp[]): string {
  let text = '';
  for (const op of ops) {
    const json = op.value === undefined ? undefined : JSON.stringify(op.value);
    text += `${op.collection} ${op.ifVersion ?? '-'} ${op.key.length} ${json === undefined ? '-' : json.length}\n${op.key}${json ?? ''}`;
  }
  return text;
}

/** The inverse of encodeBatch. Throws on text encodeBatch cannot have made. */
export function decodeBatch(text: string): JsonOp[] {
  const ops: JsonOp[] = [];
  let at = 0;
  while (at < text.length) {
    const newline = text.indexOf('\n', at);
    const fields = newline < 0 ? [] : text.slice(at, newline).split(' ');
    const [collection, ifVersion, keyLength, jsonLength] = fields;
    const keyEnd = newline + 1 + Number(keyLength);
    const end = jsonLength === '-' ? keyEnd : keyEnd + Number(jsonLength);
    if (fields.length !== 4 || !Number.isInteger(keyEnd) || !Number.isInteger(end) || end > text.length) {
      throw new Error(`malformed store batch at offset ${at}`);
    }
    const op: JsonOp = { collection: collection as Collection, key: text.slice(newline + 1, keyEnd) };
    if (jsonLength !== '-') op.json = text.slice(keyEnd, end);
    if (ifVersion !== '-') op.ifVersion = Number(ifVersion);
    ops.push(op);
    at = end;
  }
  return ops;
}
