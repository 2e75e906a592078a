// window.smkdPage: what a test (web/screenshot.ts, a browser test) waits for and reads, so that it
// need not scrape the page: readiness (the engine up, the model and the data loaded) and the last
// prediction and fine-tuning.

export interface PagePrediction {
  predicted: string;
  /** Every class with its score, best first. */
  scores: { name: string; score: number }[];
  /** Wall time of the classification (features, attention and matches), ms. */
  ms: number;
  /** How many classifications the page has made. */
  count: number;
}

export interface SmkdPageHook {
  /** Resolves with the adapter's name when the page can classify; rejects with why it cannot (no WebGPU, ...). */
  ready: Promise<{ adapter: string }>;
  lastPrediction?: PagePrediction;
  /** The last fine-tuning's final loss and wall time, ms. */
  lastLearn?: { loss: number; ms: number };
  /** The last error the page showed. */
  error?: string;
}

/** Install window.smkdPage; returns it with the functions that settle `ready`. */
export function installHook(): { hook: SmkdPageHook; resolve: (adapter: string) => void; reject: (e: Error) => void } {
  let resolve!: (adapter: string) => void;
  let reject!: (e: Error) => void;
  const ready = new Promise<{ adapter: string }>((res, rej) => {
    resolve = (adapter) => res({ adapter });
    reject = rej;
  });
  // A page without WebGPU rejects `ready` whether or not a test is listening: not an unhandled rejection.
  ready.catch(() => undefined);
  const hook: SmkdPageHook = { ready };
  // Through globalThis, not window: this file is also read by web/screenshot.ts (in Node) for the types.
  (globalThis as { smkdPage?: SmkdPageHook }).smkdPage = hook;
  return { hook, resolve, reject };
}
