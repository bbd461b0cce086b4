import type { Logger } from './log.js';

/**
 * At most `perWindow` lines of one kind per `windowMs`; what the budget drops
 * is counted and reported on the first line of a later window. For events a
 * stranger can cause at will (refused handshakes), so that they are visible
 * in the log without letting anyone fill it.
 */
export class LogBudget {
  private windowStart = 0;
  private used = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly msg: string,
    private readonly perWindow = 10,
    private readonly windowMs = 1000,
  ) {}

  info(fields: Record<string, unknown>): void {
    this.emit('info', fields);
  }

  warn(fields: Record<string, unknown>, msg = this.msg): void {
    this.emit('warn', fields, msg);
  }

  private emit(level: 'info' | 'warn', fields: Record<string, unknown>, msg = this.msg): void {
    const now = Date.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.perWindow) {
      this.suppressed++;
      return;
    }
    this.used++;
    const dropped = this.suppressed;
    this.suppressed = 0;
    this.log[level](dropped ? { ...fields, suppressed: dropped } : fields, dropped ? `${msg} (${dropped} more since the last line, not logged)` : msg);
  }
}
