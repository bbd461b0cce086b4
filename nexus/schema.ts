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

/** The deepest described schema on the issue's path, and the field it sits at. */
function described(root: AnySchema, path: PropertyKey[], subject: string): { field: string; text: string } | undefined {
  let s: AnySchema | undefined = root;
  let found = descriptionOf(root) ? { field: subject, text: descriptionOf(root)! } : undefined;
  const names: string[] = [];
  for (const key of path) {
    s = s && child(s, key);
    if (!s) break;
    if (typeof key !== 'number') names.push(String(key));
    const text = descriptionOf(s);
    if (text) found = { field: names.join('.'), text };
  }
  return found;
}

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
  if (issue.code === 'custom' || issue.code === 'invalid_key') {
    // Checks written for Nexus carry a complete sentence.
    const inner = issue.code === 'invalid_key' ? issue.issues[0]?.message : issue.message;
    const message = inner ?? issue.message;
    return { rule, field, message, detail: message };
  }
  const d = described(schema, issue.path, subject);
  if (d) return { rule, field, message: `${d.field ? `${d.field} ` : ''}must be ${d.text}`, detail: `must be ${d.text}`, expected: d.text };
  if (names.length === 0 && issue.code === 'invalid_type') return { rule, field, message: `${subject} must be a JSON ${issue.expected}`, detail: `must be a JSON ${issue.expected}` };
  return { rule, field, message: `${field}: ${issue.message}`, detail: issue.message };
}

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
export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown, keyOf: (field: string, v: Violation) => string): z.output<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const v = violation(schema, r.error, '');
  // The key names the field already.
  throw new ConfigError(keyOf(v.field, v), v.detail);
}

/**
 * Reports a failed check from inside `check`, `superRefine` or `transform`:
 * a complete message, optionally a finer rule and the path below the value.
 */
export function fail(ctx: { issues: unknown[]; value?: unknown }, message: string, opts: { rule?: string; path?: PropertyKey[] } = {}): void {
  ctx.issues.push({ code: 'custom', message, input: ctx.value, path: opts.path ?? [], ...(opts.rule ? { params: { rule: opts.rule } } : {}) });
}
