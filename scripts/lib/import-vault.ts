// nexus-import vault: copies a KV v2 mount into Nexus through the mTLS API.
// No state file: what Nexus already holds is the progress. A secret whose
// Nexus versions already equal the first Vault versions (by value, in order)
// gets only the rest, so a killed run resumes and a second run writes nothing.
import { PilotError, request, type Conn } from './pilot-conn.js';
import type { VaultSource } from './vault-source.js';

type Data = Record<string, string>;

export interface ImportOptions {
  path: string;
  allVersions: boolean;
  dryRun: boolean;
  /** One line per secret, as it is done. */
  progress(line: string): void;
}

export interface ImportSummary {
  secrets: number;
  copied: number;
  versionsWritten: number;
  unchanged: number;
  failed: number;
  deletedVersions: number;
  destroyedVersions: number;
}

/** The Nexus side, over the mTLS HTTP API (never the database). */
export interface NexusTarget {
  /** The current version and each version's number, or null when the path has none. */
  versions(path: string): Promise<{ current: number; versions: number[] } | null>;
  /** A version's value, or null when it cannot be read (deleted, destroyed). */
  read(path: string, version: number): Promise<Data | null>;
  write(path: string, data: Data, cas: number): Promise<number>;
}

/** Nexus refused this one path (its charset, its size): reported, and the run goes on. */
class PathRefused extends Error {}

export function nexusTarget(conn: Conn): NexusTarget {
  const call = async (method: string, urlPath: string, body?: unknown) => {
    const res = await request(conn, method, urlPath, body);
    const message = (res.body as { error?: { message?: string } } | null)?.error?.message ?? `HTTP ${res.status}`;
    if (res.status === 400 || res.status === 413) throw new PathRefused(message);
    if (res.status === 401 || res.status === 403) throw new PilotError(`Nexus refused the import (${res.status}: ${message}): it needs an admin SVID (NEXUS_CERT, NEXUS_KEY)`);
    if (res.status >= 400 && res.status !== 404) throw new PilotError(`Nexus answered ${res.status} to ${method} ${urlPath.split('?')[0]}: ${message}`);
    return res;
  };
  return {
    async versions(path) {
      const res = await call('GET', `/v1/secrets/${path}:metadata`);
      if (res.status === 404) return null;
      const md = res.body as { current_version: number; versions: Array<{ version: number }> };
      return { current: md.current_version, versions: md.versions.map((v) => v.version) };
    },
    async read(path, version) {
      const res = await call('GET', `/v1/secrets/${path}?version=${version}`);
      return res.status === 404 ? null : (res.body as { data: Data }).data;
    },
    async write(path, data, cas) {
      const res = await call('PUT', `/v1/secrets/${path}`, { data, cas });
      if (res.status === 404) throw new PilotError(`Nexus answered 404 to a write of ${path}`);
      return (res.body as { version: number }).version;
    },
  };
}

/** Nexus holds strings; Vault may hold any JSON value: those are kept as their JSON text. */
function asNexusData(raw: Record<string, unknown>): { data: Data; encoded: string[] } {
  const data: Data = {};
  const encoded: string[] = [];
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'string') data[k] = v;
    else {
      data[k] = JSON.stringify(v);
      encoded.push(k);
    }
  }
  return { data, encoded };
}

function same(a: Data, b: Data): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** What one secret should become in Nexus: its live values in order, and what was left behind. */
async function wanted(vault: VaultSource, path: string, allVersions: boolean) {
  const meta = await vault.metadata(path);
  const values: Data[] = [];
  const notes: string[] = [];
  let deleted = 0;
  let destroyed = 0;
  if (!meta) return { values, notes: ['gone from Vault since it was listed'], deleted, destroyed };
  const versions = allVersions ? meta.versions : meta.versions.filter((v) => v.version === meta.currentVersion);
  for (const v of versions) {
    const why = v.destroyed ? 'destroyed' : v.deleted ? 'soft-deleted' : null;
    const raw = why ? null : await vault.read(path, v.version);
    if (!raw) {
      if (v.destroyed) destroyed += 1;
      else deleted += 1;
      notes.push(`v${v.version} ${why ?? 'unreadable'}, not copied`);
      continue;
    }
    const { data, encoded } = asNexusData(raw);
    if (encoded.length) notes.push(`v${v.version}: non-string value(s) of ${encoded.join(', ')} kept as JSON text`);
    values.push(data);
  }
  return { values, notes, deleted, destroyed };
}

/** The values still to write: after the Nexus versions that already match, or the latest alone. */
async function missing(nexus: NexusTarget, path: string, values: Data[]): Promise<{ toWrite: Data[]; cas: number; note?: string }> {
  const held = await nexus.versions(path);
  if (!held) return { toWrite: values, cas: 0 };
  const existing: Array<Data | null> = [];
  for (const v of held.versions) existing.push(await nexus.read(path, v));
  const isPrefix = existing.length <= values.length && existing.every((d, i) => d !== null && same(d, values[i]!));
  if (isPrefix) return { toWrite: values.slice(existing.length), cas: held.current };
  // Nexus has a history of its own here: keep it, and make the latest value Vault's.
  const latest = values.at(-1)!;
  const current = existing.at(-1) ?? null;
  if (current && same(current, latest)) return { toWrite: [], cas: held.current };
  return { toWrite: [latest], cas: held.current, note: 'Nexus had other versions here; only the latest value was added' };
}

export async function importVault(vault: VaultSource, nexus: NexusTarget, opts: ImportOptions): Promise<ImportSummary> {
  const paths = await vault.walk(opts.path);
  const sum: ImportSummary = { secrets: paths.length, copied: 0, versionsWritten: 0, unchanged: 0, failed: 0, deletedVersions: 0, destroyedVersions: 0 };
  let i = 0;
  for (const path of paths) {
    const at = `[${++i}/${paths.length}] ${path}`;
    const w = await wanted(vault, path, opts.allVersions);
    sum.deletedVersions += w.deleted;
    sum.destroyedVersions += w.destroyed;
    const notes = w.notes.length ? ` (${w.notes.join('; ')})` : '';
    if (w.values.length === 0) {
      opts.progress(`${at}: nothing live to copy${notes}`);
      continue;
    }
    try {
      const plan = await missing(nexus, path, w.values);
      const more = plan.note ? ` (${[plan.note, ...w.notes].join('; ')})` : notes;
      if (plan.toWrite.length === 0) {
        sum.unchanged += 1;
        opts.progress(`${at}: unchanged${more}`);
        continue;
      }
      if (!opts.dryRun) {
        let cas = plan.cas;
        for (const data of plan.toWrite) cas = await nexus.write(path, data, cas);
      }
      sum.copied += 1;
      sum.versionsWritten += plan.toWrite.length;
      opts.progress(`${at}: ${opts.dryRun ? 'would copy' : 'copied'} ${plural(plan.toWrite.length, 'version')}${more}`);
    } catch (err) {
      if (!(err instanceof PathRefused)) throw err;
      sum.failed += 1;
      opts.progress(`${at}: refused by Nexus: ${err.message}`);
    }
  }
  return sum;
}

export function summaryLine(s: ImportSummary, dryRun: boolean): string {
  const copied = dryRun ? `${s.copied} to copy (${plural(s.versionsWritten, 'version')})` : `${s.copied} copied (${plural(s.versionsWritten, 'version')} written)`;
  return `${dryRun ? 'dry run, nothing written: ' : ''}${plural(s.secrets, 'secret')}: ${copied}, ${s.unchanged} unchanged, ${s.failed} failed; not copied: ${s.deletedVersions} soft-deleted, ${s.destroyedVersions} destroyed version(s)`;
}
