import type { Plugin } from 'esbuild';

/**
 * For the client bundles (nexus-ci, the action, Pilot): `import('…/spiffe/workload-api.js')`
 * becomes `import('./workload-api.mjs')`, resolved beside the bundle at run time, so that
 * gRPC stays out of the bundle and is loaded only by a job that uses the Workload API.
 */
export const workloadApiBeside: Plugin = {
  name: 'workload-api-beside',
  setup(b) {
    b.onResolve({ filter: /\/spiffe\/workload-api\.js$/ }, (args) => {
      if (args.kind !== 'dynamic-import') throw new Error(`${args.importer} imports the Workload API client statically: import() it, so that gRPC stays out of the bundle`);
      return { path: './workload-api.mjs', external: true };
    });
  },
};
