// Loaded with --import into a compiled Nexus by the ablation bench (ablation.ts), never by
// the product: replaces how the audit trail writes a record, so one build can
// be measured with its audit stage removed or written another way, in the
// same run as production. BENCH_ABLATE_TRAIL is the build's dist/audit/trail.js.
//   off           no record written, the answer still a turn later (the floor: what the rest costs)
//   off-inturn    no record written, the answer in the request's own turn
//   inturn-each   each record written and anchored in its request's own turn
//   inturn-turn   each record written in its request's own turn, the anchor moved once a turn
import { pathToFileURL } from 'node:url';

const variant = process.env.BENCH_ABLATE;
const { AuditTrail, serializeEntry } = await import(pathToFileURL(process.env.BENCH_ABLATE_TRAIL).href);

function inTurn(trail, entry) {
  try {
    trail.writer.append([serializeEntry(entry, new Date(), trail.replica)]);
    return Promise.resolve(true);
  } catch {
    return Promise.resolve(false);
  }
}

/** The writer's anchor, moved once a turn (setImmediate) to the last head set in it. */
function anchorOncePerTurn(writer) {
  const real = writer.anchor;
  let pending = null;
  writer.anchor = {
    get: (chain) => real.get(chain),
    set(chain, head) {
      if (!pending) setImmediate(() => {
        const [c, h] = pending;
        pending = null;
        real.set(c, h);
      });
      pending = [chain, head];
    },
  };
}

let turn = null;
if (variant === 'off') {
  // As production answers: every request of a turn waits for the same setImmediate.
  AuditTrail.prototype.record = () =>
    (turn ??= new Promise((resolve) =>
      setImmediate(() => {
        turn = null;
        resolve(true);
      }),
    ));
} else if (variant === 'off-inturn') {
  AuditTrail.prototype.record = () => Promise.resolve(true);
} else if (variant === 'inturn-each' || variant === 'inturn-turn') {
  AuditTrail.prototype.record = function record(entry) {
    if (variant === 'inturn-turn' && !this.ablated) {
      anchorOncePerTurn(this.writer);
      this.ablated = true;
    }
    return inTurn(this, entry);
  };
} else {
  throw new Error(`unknown BENCH_ABLATE variant: ${variant}`);
}
