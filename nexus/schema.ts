import { z } from 'zod';
import { BadRequestError, ConfigError } from './errors.js';

/**
 * Every shape Nexus accepts or serves is a zod schema: the TypeScript type is
 * inferred from it, input is validated by it and the OpenAPI components are
 * generated from it. This module is the one place where a failed parse
 * becomes the error contract (a 400 naming the rule, or a config error naming
 * the key).
 *
 * Conventions for schema authors:
 * - `.describe('...')` a field with what it must be ("a list of 1 to 50
 *   non-empty strings"): it is the OpenAPI description and the error message
 *   (`audiences must be a list of 1 to 50 non-empty strings`).
 * - A check that needs its own words uses `refine`/`check` with a complete
 *   message; `params: { rule: 'x.y' }` names a finer rule than the field.
 */
export { z };

export interface Violation {
  /** The rule broken: the top-level field (or `body`), or a check's own `params.rule`. */
  rule: string;
  /** Where: the dotted path down to the offending field (array positions left out). */
  field: string;
  message: string;
  /** The message without the field's name, for callers that name it apart (config keys). */
  detail: string;
  /** When the message is the field's description: that description ("an integer from 1 to 10"). */
  expected?: string;
}

type Issue = z.core.$ZodIssue;
type AnySchema = z.core.$ZodType;

/** Steps through wrappers (optional, default, pipe...) to the schema that holds the shape. */
function unwrap(s: AnySchema): AnySchema {
  for (;;) {
    const def = s._zod.def as { type: string; innerType?: AnySchema; in?: AnySchema; out?: AnySchema };
    if (def.innerType) s = def.innerType;
    else if (def.type === 'pipe') s = def.in!._zod.def.type === 'transform' ? def.out! : def.in!;
    else return s;
  }
}

function child(s: AnySchema, key: PropertyKey): AnySchema | undefined {
  const def = unwrap(s)._zod.def as { type: string; shape?: Record<string, AnySchema>; element?: AnySchema; valueType?: AnySchema };
  if (def.type === 'object') return def.shape?.[String(key)];
  if (def.type === 'array') return def.element;
  if (def.type === 'record') return def.valueType;
  return undefined;
}

/** A schema's description, or that of the schema it wraps (optional, default...). */
function descriptionOf(s: AnySchema): string | undefined {
  for (let cur: AnySchema | undefined = s; cur; ) {
    const text = z.globalRegistry.get(cur)?.description;
    if (text) return text;
    const def = cur._zod.def as { innerType?: AnySchema };
    cur = def.innerType;
  }
  return undefined;
}

/** `paths[2]`, `bound_claims.repo`: a path as the caller wrote it. */
function display(path: PropertyKey[]): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`)).join('');
}

/** The deepest described schema on the issue's path, and where it sits. */
function described(root: AnySchema, path: PropertyKey[]): { at: string; text: string } | undefined {
  let s: AnySchema | undefined = root;
  let found = descriptionOf(root) ? { at: '', text: descriptionOf(root)! } : undefined;
  for (let i = 0; i < path.length && s; i++) {
    s = child(s, path[i]!);
    const text = s && descriptionOf(s);
    if (text) found = { at: display(path.slice(0, i + 1)), text };
  }
  return found;
}

// zod's message for a refine given none: such checks are explained by the field's description.
const UNEXPLAINED = 'Invalid input';

/** The first issue of a failed parse, in the error contract's terms. */
export function violation(schema: AnySchema, error: z.ZodError, subject = 'body'): Violation {
  const issue = error.issues[0] as Issue;
  const names = issue.path.filter((k) => typeof k !== 'number').map(String);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const message = `unknown field ${JSON.stringify(key)}`;
    return { rule: names[0] ?? subject, field: [...names, key].join('.'), message, detail: message };
  }
  const field = names.join('.') || subject;
  const own = issue.code === 'custom' ? (issue.params as { rule?: unknown } | undefined)?.rule : undefined;
  const rule = typeof own === 'string' ? own : (names[0] ?? subject);
  // Checks written for Nexus carry a complete sentence.
  const sentence = issue.code === 'custom' ? issue.message : issue.code === 'invalid_key' ? issue.issues[0]?.message : undefined;
  if (sentence && sentence !== UNEXPLAINED) return { rule, field, message: sentence, detail: sentence };
  const d = described(schema, issue.path);
  if (d) {
    const at = d.at || subject;
    return { rule, field, message: `${at ? `${at} ` : ''}must be ${d.text}`, detail: `must be ${d.text}`, expected: d.text };
  }
  if (names.length === 0 && issue.code === 'invalid_type') return { rule, field, message: `${subject} must be a JSON ${issue.expected}`, detail: `must be a JSON ${issue.expected}` };
  return { rule, field, message: `${display(issue.path) || subject}: ${issue.message}`, detail: issue.message };
}

/** Any JSON object (what a route reads before checks of its own). */
export const JsonObject = z.looseObject({});

/** Validates request input; a violation is a 400 naming its rule. */
export function parseInput<S extends z.ZodType>(schema: S, raw: unknown, subject = 'body'): z.output<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const v = violation(schema, r.error, subject);
  throw new BadRequestError(v.rule, v.message);
}

/**
 * Validates configuration; a violation is a ConfigError naming the key:
 * `keyOf` turns the offending field (dotted) into the name the operator wrote.
 */
export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown, keyOf: (field: string, v: Violation) => string, where = ''): z.output<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const v = violation(schema, r.error, '');
  // The key names the field already.
  throw new ConfigError(keyOf(v.field, v), `${v.detail}${where}`);
}

/**
 * Schemas that a domain rule function checks (it throws BadRequestError with
 * its own rule), documented in JSON Schema as `doc`. For values whose rules
 * zod cannot keep exactly (a secret's data keeps a `__proto__` key).
 */
export const documentedAs = new WeakMap<z.core.$ZodType, z.core.$ZodType>();

export function ruled<T>(parse: (raw: unknown) => T, doc: z.ZodType<T>): z.ZodType<T> {
  const schema = z.unknown().transform((raw, ctx) => {
    try {
      return parse(raw);
    } catch (err) {
      if (!(err instanceof BadRequestError)) throw err;
      fail(ctx, err.message, { rule: err.rule });
      return z.NEVER;
    }
  });
  documentedAs.set(schema, doc);
  return schema;
}

/**
 * Reports a failed check from inside `check`, `superRefine` or `transform`:
 * a complete message, optionally a finer rule and the path below the value.
 */
export function fail(ctx: { issues: unknown[]; value?: unknown }, message: string, opts: { rule?: string; path?: PropertyKey[] } = {}): void {
  ctx.issues.push({ code: 'custom', message, input: ctx.value, path: opts.path ?? [], ...(opts.rule ? { params: { rule: opts.rule } } : {}) });
}
