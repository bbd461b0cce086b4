import fs from 'node:fs';

// Set by esbuild in the standalone Pilot (scripts/build-pilot.ts), which has no package.json beside it.
declare const __NEXUS_VERSION__: string | undefined;

/** The package names the version may be read from (the current one, and the name before the rename). */
const PACKAGE_NAMES = ['@nexus-secrets/nexus', 'nexus'];

/**
 * The package's version: baked into a standalone bundle, else from the
 * package.json above this module: one level up from sources and bundles
 * (scripts/lib, dist/bin), two from tsc output (dist/scripts/lib).
 */
export function packageVersion(): string {
  if (typeof __NEXUS_VERSION__ === 'string') return __NEXUS_VERSION__;
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(fs.readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name && PACKAGE_NAMES.includes(pkg.name) && pkg.version) return pkg.version;
    } catch {
      /* not there: try the next level */
    }
  }
  return 'unknown';
}
