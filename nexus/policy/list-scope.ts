import type { ListScope } from '../secrets/types.js';
import { compileGlob } from './glob.js';

/** A glob read as compileGlob reads it: a literal character each, `*` (within a segment) or `**` (across segments). */
function tokens(pattern: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] !== '*') out.push(pattern[i]!);
    else if (pattern[i + 1] !== '*') out.push('*');
    else {
      out.push('**');
      i++;
    }
  }
  return out;
}

/** The characters before the first wildcard: every path the glob matches starts with them. */
function literalPrefix(pattern: string): string {
  const star = pattern.indexOf('*');
  return star < 0 ? pattern : pattern.slice(0, star);
}

/**
 * How many leading characters of `s` some path the glob matches could start
 * with (all of `s` if `s` itself could be such a start). A small NFA over the
 * tokens: a state is how many tokens have been matched.
 */
function viableLength(glob: string[], s: string): number {
  const close = (on: boolean[]) => {
    // A wildcard may match nothing: its state also stands on the next token.
    for (let i = 0; i < glob.length; i++) if (on[i] && (glob[i] === '*' || glob[i] === '**')) on[i + 1] = true;
    return on;
  };
  const start = Array<boolean>(glob.length + 1).fill(false);
  start[0] = true;
  let on = close(start);
  for (let j = 0; j < s.length; j++) {
    const c = s[j]!;
    const next = Array<boolean>(glob.length + 1).fill(false);
    let any = false;
    for (let i = 0; i < glob.length; i++) {
      if (!on[i]) continue;
      const t = glob[i]!;
      if (t === '**' || (t === '*' && c !== '/')) next[i] = any = true;
      else if (t === c) next[i + 1] = any = true;
    }
    if (!any) return j;
    on = close(next);
  }
  return s.length;
}

/**
 * What a caller may list, as the secrets service walks it: the paths its
 * list globs match, the key ranges such paths can lie in (each glob's literal
 * prefix), and how far past a path it may not list the walk can jump (the
 * shortest start of that path no glob can continue). Subtrees outside every
 * range are never read; inside a range, each maximal subtree no glob can
 * reach costs one index seek, not a row each.
 */
export function listScope(globs: readonly string[]): ListScope {
  const compiled = globs.map((g) => ({ literal: literalPrefix(g), tokens: tokens(g), re: compileGlob(g) }));
  return {
    allows: (path) => compiled.some((g) => g.re.test(path)),
    ranges(prefix) {
      const starts = compiled
        .filter((g) => viableLength(g.tokens, prefix) === prefix.length)
        // A viable prefix shorter than the literal one is a start of it.
        .map((g) => (prefix.length >= g.literal.length ? prefix : g.literal))
        .sort();
      // Drop a range inside another (sorted, it follows the one it is in): what is left is disjoint, and in key order.
      const kept: string[] = [];
      for (const s of starts) if (kept.length === 0 || !s.startsWith(kept[kept.length - 1]!)) kept.push(s);
      return kept;
    },
    skipPast(path) {
      const viable = Math.max(-1, ...compiled.map((g) => viableLength(g.tokens, path)));
      // Path characters are all below 0x7f: `${start}\x7f` follows every path with that start.
      return viable >= path.length ? path : `${path.slice(0, viable + 1)}\x7f`;
    },
  };
}
