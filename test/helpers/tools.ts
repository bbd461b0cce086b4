import { execFileSync } from 'node:child_process';

/**
 * The path of a system tool a test needs (promtool, systemd-analyze). Absent,
 * the test fails under CI (.ci/run installs it) and is skipped elsewhere,
 * saying how to install it.
 */
export function systemTool(ctx: Mocha.Context, name: string, install: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
  } catch {
    const how = `${name} is not installed: ${install}`;
    if (process.env.CI === 'true') throw new Error(how);
    console.warn(`      (skipped: ${how})`);
    ctx.skip();
  }
}
