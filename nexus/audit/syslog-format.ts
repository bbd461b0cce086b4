import os from 'node:os';

/**
 * The structured-data element every forwarded record carries. 32473 is the
 * private enterprise number RFC 5612 sets aside for documentation: Nexus has
 * none of its own, and receivers only need the name to be stable.
 */
export const SD_ID = 'nexus@32473';
const BOM = '\uFEFF';
/** Facility 13, "log audit" (RFC 5424 table 1). */
const FACILITY = 13;

export interface ForwardedFields {
  chain: string;
  gen: number;
  seq: number;
  mac: string;
}

/** The chain fields a trail line ends with (`sealLine` in chain.ts writes them last, in this order), read without parsing the record. */
const CHAIN_TAIL = /^"gen":(\d+),"seq":(\d+),"key":"[^"]*","prev":"[0-9a-f]*","mac":"([0-9a-f]+)"\}$/;
const TIME = /^"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z)"/;
const ACTION = /^"action":"([!-~]{1,32}?)"/;

/**
 * gen, seq and mac of a trail line; null when the line is not a sealed
 * record. Searched from the end (where the writer puts them), not scanned:
 * this runs for every record forwarded.
 */
export function chainFieldsOf(line: string): { gen: number; seq: number; mac: string } | null {
  const at = line.lastIndexOf('"gen":');
  const m = at < 0 ? null : CHAIN_TAIL.exec(line.slice(at));
  return m ? { gen: Number(m[1]), seq: Number(m[2]), mac: m[3]! } : null;
}

/** The field matched by `re` (anchored) at the last `"name":` of the line. */
function fieldAt(line: string, name: string, re: RegExp): string | undefined {
  const at = line.lastIndexOf(`"${name}":`);
  return at < 0 ? undefined : re.exec(line.slice(at, at + 64))?.[1];
}

function severityOf(line: string): number {
  if (line.includes('"decision":"error"')) return 3;
  if (line.includes('"decision":"deny"') || line.includes('"kind":"signal"') || line.includes('"action":"audit.')) return 4;
  return 6;
}

/** An SD-PARAM value: `"`, `\` and `]` escaped (RFC 5424 6.3.3). */
function sdValue(v: string | number): string {
  return String(v).replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** PRINTUSASCII, 1 to `max` characters, or the NILVALUE. */
function headerField(v: string | undefined, max: number): string {
  const s = (v ?? '').replace(/[^!-~]/g, '').slice(0, max);
  return s || '-';
}

export const HOSTNAME = headerField(os.hostname(), 255);

/**
 * One trail line as an RFC 5424 message: the line itself (exactly as
 * written, without its newline) is the MSG, so the receiver's copy verifies
 * under the same MACs; the chain fields go into structured data, so a
 * receiver can index and drop repeats without parsing the JSON.
 */
export function formatRfc5424(line: string, chain: string, hostname = HOSTNAME, fields?: { gen: number; seq: number; mac: string }): string | null {
  const f = fields ?? chainFieldsOf(line);
  if (!f) return null;
  const time = fieldAt(line, 'time', TIME) ?? '-';
  const msgid = headerField(fieldAt(line, 'action', ACTION), 32);
  const sd = `[${SD_ID} chain="${sdValue(chain)}" gen="${f.gen}" seq="${f.seq}" mac="${f.mac}"]`;
  return `<${FACILITY * 8 + severityOf(line)}>1 ${time} ${hostname} nexus - ${msgid} ${sd} ${BOM}${line}`;
}

/** Octet-counting framing (RFC 6587 3.4.1, RFC 5425 4.3): the message's length in bytes, a space, the message. */
export function frameOctetCounted(msg: string): Buffer {
  const len = Buffer.byteLength(msg);
  const head = `${len} `;
  const out = Buffer.allocUnsafe(head.length + len);
  out.write(head, 0, 'latin1');
  out.write(msg, head.length, 'utf8');
  return out;
}

const SD_START = `[${SD_ID} `;
const PARAM = /([a-z]+)="((?:[^"\\]|\\.)*)"/g;

/**
 * A forwarded record read back from a receiver's file line: its chain
 * fields and the trail line it carried. The line may hold the whole message
 * (rsyslog's `%rawmsg%`) or anything that keeps the structured data and the
 * MSG after it. Null for a line that carries no Nexus record.
 */
export function parseForwarded(text: string): (ForwardedFields & { line: string }) | null {
  const at = text.indexOf(SD_START);
  if (at < 0) return null;
  // The element ends at the first `]` outside a quoted value.
  let i = at + SD_START.length;
  let quoted = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === ']' && !quoted) break;
  }
  if (i >= text.length) return null;
  const params: Record<string, string> = {};
  for (const m of text.slice(at + SD_START.length, i).matchAll(PARAM)) params[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
  let rest = text.slice(i + 1);
  // Other SD elements a relay may have added come before MSG.
  while (rest.startsWith('[')) {
    const end = rest.indexOf('] ');
    if (end < 0) break;
    rest = rest.slice(end + 1);
  }
  rest = rest.replace(/^ /, '').replace(/^\uFEFF/, '');
  const gen = Number(params.gen);
  const seq = Number(params.seq);
  if (!Number.isInteger(gen) || !Number.isInteger(seq) || !params.mac || params.chain === undefined) return null;
  return { chain: params.chain, gen, seq, mac: params.mac, line: rest };
}
