import type { Repos } from './storage.js';

/** The repository accessors both engines share: each engine says where its repositories come from. */
export abstract class EngineRepos implements Repos {
  protected abstract repos(): Repos;

  get secrets() {
    return this.repos().secrets;
  }

  get dataKeys() {
    return this.repos().dataKeys;
  }

  get policies() {
    return this.repos().policies;
  }

  get meta() {
    return this.repos().meta;
  }

  get oidc() {
    return this.repos().oidc;
  }

  get configVersions() {
    return this.repos().configVersions;
  }

  get dbcreds() {
    return this.repos().dbcreds;
  }

  get leases() {
    return this.repos().leases;
  }

  get configSecrets() {
    return this.repos().configSecrets;
  }

  get signals() {
    return this.repos().signals;
  }

  get auditKeys() {
    return this.repos().auditKeys;
  }
}
