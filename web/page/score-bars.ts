// The prediction's scores as bars: every class, best first, the bar's length the cosine similarity to
// the class's prototype (clamped at 0: a negative cosine is as unlike as 0). A click on a row chooses
// the class whose patch matches are shown.
import { h } from './dom.js';
import type { Prediction } from './few-shot.js';

export function renderScores(container: HTMLElement, p: Prediction, chosen: number, onChoose: (cls: number) => void): void {
  container.replaceChildren(
    ...p.order.map((k) => {
      const score = p.scores[k];
      const bar = h('span', { className: 'bar' });
      bar.style.width = `${(100 * Math.max(0, score)).toFixed(1)}%`;
      const row = h(
        'button',
        { type: 'button', className: `score-row${k === p.predicted ? ' predicted' : ''}${k === chosen ? ' chosen' : ''}`, title: `show the patch matches with ${p.classes[k]}` },
        h('span', { className: 'score-name', textContent: p.classes[k] }),
        h('span', { className: 'bar-track' }, bar),
        h('span', { className: 'score-value', textContent: score.toFixed(3) }),
      );
      row.addEventListener('click', () => onChoose(k));
      return row;
    }),
  );
}
