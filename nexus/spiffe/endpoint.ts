/**
 * A SPIFFE Workload API endpoint (SPIFFE_ENDPOINT_SOCKET, NEXUS_SPIFFE_SOCKET)
 * as a gRPC target: `unix:///path` (the spec's form), `unix:/path`, or a bare
 * absolute path. TCP endpoints are refused: the agent attests a workload by
 * its Unix socket peer, which TCP cannot give. Kept apart from the gRPC client
 * so that config parsing does not load gRPC.
 */
export function socketTarget(raw: string): string | { invalid: string } {
  const path = raw.startsWith('unix://') ? raw.slice('unix://'.length) : raw.startsWith('unix:') ? raw.slice('unix:'.length) : raw;
  if (!path.startsWith('/') || path.includes('\0')) return { invalid: `must be unix:///absolute/path, got ${JSON.stringify(raw)}` };
  return `unix://${path}`;
}
