import fs from 'node:fs';

/**
 * The package's version, from the package.json above this module: one level
 * up from sources and bundles (scripts/lib, dist/bin), two from tsc output
 * (dist/scripts/lib).
 */
export function packageVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(fs.readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'nexus' && pkg.version) return pkg.version;
    } catch {
      /* not there: try the next level */
    }
  }
  return 'unknown';
}
