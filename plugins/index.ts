import type { AuthPlugin } from '../nexus/auth/plugin.js';
import type { Config } from '../nexus/config/index.js';
import { OidcPlugin } from './oidc/plugin.js';

/** The auth plugins the config enables (the OIDC one unless NEXUS_OIDC_ADDR=off). */
export function enabledPlugins(config: Config): AuthPlugin[] {
  return config.oidcAddr ? [new OidcPlugin()] : [];
}
