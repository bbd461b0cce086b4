/**
 * "At least N events in W ms", kept as the times of the last N events in a
 * fixed ring (allocated once per key). Trips at most once per window, so a
 * burst that goes on is one signal per window, not one per event.
 */
export class BurstWindow {
  private readonly times: Float64Array;
  private next = 0;
  private seen = 0;
  private trippedAt = -Infinity;

  constructor(
    private readonly threshold: number,
    private readonly windowMs: number,
  ) {
    this.times = new Float64Array(threshold);
  }

  /** Records one event at `now`; true when it completes a burst. */
  hit(now: number): boolean {
    this.times[this.next] = now;
    this.next = (this.next + 1) % this.threshold;
    if (this.seen < this.threshold) this.seen++;
    // The slot to be overwritten next holds the oldest of the last N.
    const oldest = this.times[this.next]!;
    if (this.seen < this.threshold || now - oldest > this.windowMs || now - this.trippedAt < this.windowMs) return false;
    this.trippedAt = now;
    return true;
  }
}
