import type { Resolved } from './fetch.js';

export type Format = 'dotenv' | 'json' | 'shell';
export const FORMATS: readonly Format[] = ['dotenv', 'json', 'shell'];

/** POSIX shell single quotes: nothing inside is expanded. */
function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

/** dotenv double quotes with escapes (what the dotenv libraries read back, multi-line included). */
function dotenvQuote(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$').replace(/\r/g, '\\r').replace(/\n/g, '\\n')}"`;
}

export function render(format: Format, values: Resolved[]): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(Object.fromEntries(values.map((v) => [v.name, v.value])), null, 2)}\n`;
    case 'shell':
      return values.map((v) => `export ${v.name}=${shellQuote(v.value)}\n`).join('');
    case 'dotenv':
      return values.map((v) => `${v.name}=${dotenvQuote(v.value)}\n`).join('');
  }
}
