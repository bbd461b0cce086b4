import type { Context } from 'koa';
import { BadRequestError, TooLargeError } from '../errors.js';
import { parseInput, type z } from '../schema.js';

export const MAX_BODY_BYTES = 1024 * 1024;

export interface ReadOptions {
  /** Parse the body as JSON whatever its Content-Type (Vault's API does: `curl --data` sends a form type). */
  anyContentType?: boolean;
  /** The value an empty body stands for, where a body is optional (otherwise an empty body is a 400). */
  empty?: unknown;
}

/**
 * Reads a JSON body of at most `limit` bytes: a Content-Length over the limit
 * is refused before reading, a stream that runs over it is cut off.
 */
export async function readJson(ctx: Context, limit = MAX_BODY_BYTES, opts: ReadOptions = {}): Promise<unknown> {
  const type = ctx.get('Content-Type');
  refuseOversize(ctx, limit);
  if (type && !opts.anyContentType && !/^application\/json\b/i.test(type)) throw new BadRequestError('content_type', 'request body must be application/json');
  const raw = await readRaw(ctx, limit);
  if (raw.length === 0) {
    if (opts.empty !== undefined) return opts.empty;
    throw new BadRequestError('body', 'a JSON body is required');
  }
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw new BadRequestError('json', 'request body is not valid JSON');
  }
}

function refuseOversize(ctx: Context, limit: number): void {
  const declared = Number(ctx.get('Content-Length') || NaN);
  if (declared > limit) {
    ctx.set('Connection', 'close');
    throw new TooLargeError(`request body is larger than ${limit} bytes`);
  }
}

/**
 * The body's bytes as sent (what a webhook signature covers), at most
 * `limit`: a Content-Length over it is refused before reading, a stream that
 * runs over it is cut off.
 */
export async function readRaw(ctx: Context, limit = MAX_BODY_BYTES): Promise<Buffer> {
  refuseOversize(ctx, limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      // Answer 413 and drop the connection instead of draining the rest.
      ctx.set('Connection', 'close');
      throw new TooLargeError(`request body is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A JSON body validated by its schema (a violation is a 400 naming the rule). */
export async function readBody<S extends z.ZodType>(ctx: Context, schema: S, limit = MAX_BODY_BYTES, opts: ReadOptions = {}): Promise<z.output<S>> {
  return parseInput(schema, await readJson(ctx, limit, opts));
}
