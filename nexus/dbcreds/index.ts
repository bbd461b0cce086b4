import type { AuditTrail } from '../audit/trail.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Storage } from '../storage/storage.js';
import { DbCredsConfig } from './config.js';
import { LeaseService, type LeaseOptions } from './leases.js';
import { LeaseSweeper } from './sweeper.js';
import { DEFAULT_TARGET_OPTIONS } from './target.js';

/** Database credentials: their configuration, the lease service and its sweeper, started and stopped together. */
export interface DbCreds {
  config: DbCredsConfig;
  leases: LeaseService;
  sweeper: LeaseSweeper;
  stop(): Promise<void>;
}

export async function startDbCreds(
  deps: { storage: Storage; keyring: Keyring; audit: AuditTrail; metrics: Metrics; log: Logger },
  opts: LeaseOptions & { sweepIntervalMs?: number },
): Promise<DbCreds> {
  const config = new DbCredsConfig(deps.storage, deps.keyring, DEFAULT_TARGET_OPTIONS, opts.now);
  const log = deps.log.child({ component: 'leases' });
  const leases = new LeaseService(deps.storage, config, deps.audit, deps.metrics, log, opts);
  deps.metrics.leasesActive = () => leases.countActive();
  const sweeper = new LeaseSweeper(leases, log, opts.sweepIntervalMs);
  await sweeper.start();
  return {
    config,
    leases,
    sweeper,
    stop: async () => {
      await sweeper.stop();
      await leases.close();
    },
  };
}
