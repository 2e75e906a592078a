// What `smkd eval` and `smkd embed` print around a feature extraction: the backbone they loaded, a progress bar.
import { SingleBar } from 'cli-progress';
import type { LoadedBackbone } from '../backbone-file.js';

export function describeBackbone(b: LoadedBackbone): string {
  const c = b.config;
  const ignored = b.ignored.length ? `; ignored ${b.ignored.length} other tensor(s) (${b.ignored.slice(0, 3).join(', ')}${b.ignored.length > 3 ? ', ...' : ''})` : '';
  return `${b.file}: ViT ${c.embedDim}-d, depth ${c.depth}, ${c.numHeads} heads (${b.headsFrom}), patch ${c.patchSize}, ${c.imgSize} px${ignored}`;
}

/** A progress bar on stderr while images go through the backbone (only on a terminal). */
export function extractionBar(): { update: (done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar({ format: 'features {bar} {value}/{total} images | ETA {eta_formatted}', hideCursor: true, stream: process.stderr });
  let started = false;
  return {
    update: (done, total) => {
      if (!started) bar.start(total, 0);
      started = true;
      bar.update(done);
    },
    stop: () => {
      if (started) bar.stop();
      started = false;
    },
  };
}
