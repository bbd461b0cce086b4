import { CONFIG_TOPICS, type ConfigTopic } from './changes.js';
import type { Db } from './db.js';
import type { SqliteGate } from './sqlite-gate.js';
import type { ConfigVersionsRepo } from './storage.js';

const KNOWN: ReadonlySet<string> = new Set(CONFIG_TOPICS);

/** The counters as read, known topics only (a newer Nexus may add rows). */
export function versionsFrom(rows: Array<{ topic: string; version: number }>): Map<ConfigTopic, number> {
  return new Map(rows.filter((r) => KNOWN.has(r.topic)).map((r) => [r.topic as ConfigTopic, Number(r.version)]));
}

export class SqliteConfigVersionsRepo implements ConfigVersionsRepo {
  private readonly s;

  constructor(
    db: Db,
    private readonly g: SqliteGate,
  ) {
    this.s = {
      bump: db.prepare('UPDATE config_version SET version = version + 1 WHERE topic = ?'),
      all: db.prepare<[], { topic: string; version: number }>('SELECT topic, version FROM config_version'),
    };
  }

  async bump(topic: ConfigTopic): Promise<void> {
    await this.g.idle();
    this.s.bump.run(topic);
  }

  async all(): Promise<Map<ConfigTopic, number>> {
    await this.g.idle();
    return versionsFrom(this.s.all.all());
  }
}
