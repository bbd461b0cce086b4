import { SETTINGS, type Env, type Setting } from './settings.js';

/**
 * NEXUS_* variables that Pilot, nexus-ci and the build read: the shell an
 * operator starts Nexus from often has them set, and they are not mistakes.
 */
const CLIENT_VARIABLES = ['NEXUS_ADDR', 'NEXUS_CERT', 'NEXUS_KEY', 'NEXUS_CA', 'NEXUS_FORMAT', 'NEXUS_SERVER_SPIFFE_ID', 'NEXUS_URL', 'NEXUS_DEBUG', 'NEXUS_BUILD_CODE_CACHE', 'NEXUS_TEST_DATABASE_URL'];

const KNOWN = new Set([...(Object.values(SETTINGS) as Setting[]).map((s) => s.env), ...CLIENT_VARIABLES]);

/** Levenshtein distance, for a "did you mean" on short variable names. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

export interface UnknownVariable {
  name: string;
  /** The known variable it most likely meant, when one is close. */
  suggestion?: string;
}

/** NEXUS_* names in `env` that no setting or client reads (names only: a value might be a secret). */
export function unknownVariables(env: Env): UnknownVariable[] {
  return Object.keys(env)
    .filter((name) => name.startsWith('NEXUS_') && !KNOWN.has(name))
    .sort()
    .map((name) => {
      const [best] = [...KNOWN].map((k) => ({ k, d: distance(name, k) })).sort((x, y) => x.d - y.d);
      return best && best.d <= 3 ? { name, suggestion: best.k } : { name };
    });
}
