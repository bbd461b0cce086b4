import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { AuditForwarder } from './forwarder.js';
import { SCRIPTS_TRAIL, scriptsChain } from './script-trail.js';
import type { AuditTrail } from './trail.js';

/** Where the forwarder keeps its position, beside the trail it reads. */
export const FORWARD_STATE = 'audit-forward.json';

/**
 * Exports the server chain's head and, when NEXUS_AUDIT_SYSLOG is set, makes
 * the forwarder (not yet started) of both chains of the data dir: the
 * server's trail and the scripts' one.
 */
export function auditForwarding(config: Config, trail: AuditTrail, metrics: Metrics, log: Logger): AuditForwarder | null {
  metrics.auditHead = () => trail.head();
  if (!config.auditSyslog) return null;
  let ca: string | null = null;
  if (config.auditSyslogCa) {
    try {
      ca = fs.readFileSync(config.auditSyslogCa, 'utf8');
    } catch (err) {
      throw new ConfigError('NEXUS_AUDIT_SYSLOG_CA', `cannot read ${config.auditSyslogCa}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const forwarder = new AuditForwarder({
    target: config.auditSyslog,
    ca,
    chains: [
      { name: trail.chain, file: trail.file, head: () => trail.head() },
      { name: scriptsChain(config), file: path.join(config.dataDir, SCRIPTS_TRAIL) },
    ],
    stateFile: path.join(config.dataDir, FORWARD_STATE),
    log: log.child({ component: 'audit-forward' }),
    onError: (reason) => metrics.auditForwardErrors.inc({ reason }),
  });
  metrics.auditForwardLag = () => forwarder.lag();
  return forwarder;
}
