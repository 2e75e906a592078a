// The few-shot page (issue #24): the shipped Omniglot ViT in the browser on WebGPU. The user draws or
// picks 2-10 classes, one image each, draws a query, and sees the prediction with every class's score,
// where the model looks, and how the query's patches match the chosen class's; "learn these" fine-tunes
// on the classes. This file wires the page together; the work is in the modules it imports.
import { adapterName, init, rt } from '../../engine/browser.js';
import { defaultShiftRadius, shiftGrid } from '../../train/feature-options.js';
import { drawAttention } from './attention-view.js';
import { ClassRow, MAX_CLASSES, MIN_CLASSES } from './class-row.js';
import { byId } from './dom.js';
import { DrawingPad } from './drawing-pad.js';
import { modelImage, predict, queryAttention, queryMatches, type Prediction } from './few-shot.js';
import { fineTune } from './fine-tune.js';
import { drawMatches } from './matches-view.js';
import { loadOmniglotTest } from './omniglot.js';
import { OmniglotPicker } from './omniglot-picker.js';
import { loadPretrained, resetPretrained, type PretrainedModel } from './pretrained.js';
import { renderScores } from './score-bars.js';
import { installHook } from './test-hook.js';

/** Fine-tuning steps of "learn these". */
const LEARN_STEPS = 30;

const { hook, resolve: pageReady, reject: pageFailed } = installHook();
const status = byId('status');
const classifyButton = byId<HTMLButtonElement>('classify');
const learnButton = byId<HTMLButtonElement>('learn');
const resetButton = byId<HTMLButtonElement>('reset-model');
const otherDrawerButton = byId<HTMLButtonElement>('omniglot-query');
const shiftBox = byId<HTMLInputElement>('shift-tta');
const learnProgress = byId<HTMLProgressElement>('learn-progress');
const learnStatus = byId('learn-status');
const queryNote = byId('query-note');

let model: PretrainedModel | undefined;
let picker: OmniglotPicker | undefined;
let busy = false;
let tuned = false;
/** The last classification: what the result panel shows, and the class whose matches are drawn. */
let shown: { prediction: Prediction; support: Uint8Array[]; query: Uint8Array; chosen: number } | undefined;

const row = new ClassRow(byId('class-row'), () => updateControls());
const queryPad = new DrawingPad('drawing of the query');
queryPad.canvas.classList.add('query-pad');
queryPad.onChange = () => {
  if (queryPad.empty) queryNote.textContent = '';
  updateControls();
};
byId('query-pad').append(queryPad.canvas);
row.reset(3);

function say(text: string, kind: 'info' | 'busy' | 'error' = 'info'): void {
  status.textContent = text;
  status.dataset.kind = kind;
}

function updateControls(): void {
  const classes = row.filled.length;
  classifyButton.disabled = busy || !model || classes < MIN_CLASSES || queryPad.empty;
  learnButton.disabled = busy || !model || classes < MIN_CLASSES;
  resetButton.disabled = busy || !model || !tuned;
  otherDrawerButton.disabled = !picker || !row.filled.some((c) => c.picked);
  byId<HTMLButtonElement>('add-class').disabled = row.cards.length >= MAX_CLASSES;
  classifyButton.title = classes < MIN_CLASSES ? `draw or pick at least ${MIN_CLASSES} classes` : queryPad.empty ? 'draw a query' : '';
}

/** Run one GPU task at a time, the controls off meanwhile; an error is shown, not thrown. */
async function exclusive(label: string, task: () => Promise<void>): Promise<void> {
  if (busy || !model) return;
  busy = true;
  updateControls();
  say(label, 'busy');
  try {
    await task();
  } catch (e) {
    const message = (e as Error).message;
    hook.error = message;
    say(`Error: ${message}`, 'error');
  } finally {
    busy = false;
    updateControls();
  }
}

/** Classify the query against the filled cards and draw the result. */
async function classifyNow(m: PretrainedModel): Promise<void> {
  const cards = row.filled;
  const side = m.preprocessing.imageSize;
  const names = cards.map((c, i) => c.nameInput.value.trim() || `class ${i + 1}`);
  const support = cards.map((c) => c.pad.ink(side));
  const query = queryPad.ink(side);
  const shifts = shiftBox.checked ? shiftGrid(defaultShiftRadius(m.config.patchSize, m.config.imgSize)) : [];
  const t0 = performance.now();
  const prediction = await predict(m, names, support, query, shifts);
  const attention = await queryAttention(m, query);
  shown = { prediction, support, query, chosen: prediction.predicted };
  drawAttention(byId<HTMLCanvasElement>('attention'), modelImage(m, query), attention, m.config.patchSize);
  await showMatches(m);
  const ms = performance.now() - t0;
  const best = prediction.predicted;
  byId('prediction').textContent = names[best];
  byId('prediction-detail').textContent =
    `cosine ${prediction.scores[best].toFixed(3)} to its prototype · ${(ms / 1000).toFixed(1)} s${shifts.length ? ` · ${shifts.length} shifts` : ''}${tuned ? ' · fine-tuned model' : ''}`;
  byId('result').hidden = false;
  byId('result-empty').hidden = true;
  hook.lastPrediction = {
    predicted: names[best],
    scores: prediction.order.map((k) => ({ name: names[k], score: prediction.scores[k] })),
    ms,
    count: (hook.lastPrediction?.count ?? 0) + 1,
  };
  say(`Classified in ${(ms / 1000).toFixed(1)} s.`);
}

/** The scores, and the matches of the query into the chosen class's image. */
async function showMatches(m: PretrainedModel): Promise<void> {
  if (!shown) return;
  const { prediction, support, query, chosen } = shown;
  renderScores(byId('scores'), prediction, chosen, (k) => {
    if (k !== chosen) {
      void exclusive(`Matching the query's patches with ${prediction.classes[k]}…`, async () => {
        if (shown) shown.chosen = k;
        await showMatches(m);
        say(`Patch matches with ${prediction.classes[k]}.`);
      });
    }
  });
  const matches = await queryMatches(m, query, support[chosen]);
  drawMatches(byId<HTMLCanvasElement>('matches'), modelImage(m, query), modelImage(m, support[chosen]), matches, m.config.patchSize);
  byId('match-class').textContent = prediction.classes[chosen];
}

async function learn(m: PretrainedModel): Promise<void> {
  const cards = row.filled;
  const support = cards.map((c) => c.pad.ink(m.preprocessing.imageSize));
  learnProgress.max = LEARN_STEPS;
  learnProgress.value = 0;
  const t0 = performance.now();
  const loss = await fineTune(m, support, { steps: LEARN_STEPS }, (step, steps, l) => {
    learnProgress.value = step;
    learnStatus.textContent = `step ${step} of ${steps} · loss ${formatLoss(l)}`;
  });
  const ms = performance.now() - t0;
  tuned = true;
  hook.lastLearn = { loss, ms };
  const done = `Fine-tuned on ${cards.length} classes in ${(ms / 1000).toFixed(1)} s (last loss ${formatLoss(loss)}).`;
  learnStatus.textContent = done;
  byId('model-state').textContent = `fine-tuned on ${cards.length} classes`;
  if (!queryPad.empty) await classifyNow(m);
  say(`${done}${queryPad.empty ? '' : ' The query is classified again.'}`);
}

/** A loss for the progress line: small ones (a head that has learned 5 images) in exponent form. */
function formatLoss(l: number): string {
  return l < 0.01 ? l.toExponential(1) : l.toFixed(3);
}

classifyButton.addEventListener('click', () => void exclusive('Classifying… (the first time compiles the shaders)', () => classifyNow(model!)));
learnButton.addEventListener('click', () => void exclusive('Learning the classes…', () => learn(model!)));
resetButton.addEventListener(
  'click',
  () =>
    void exclusive('Restoring the pretrained weights…', async () => {
      resetPretrained(model!);
      tuned = false;
      learnProgress.value = 0;
      learnStatus.textContent = 'Pretrained weights restored.';
      byId('model-state').textContent = 'pretrained';
      if (!queryPad.empty && row.filled.length >= MIN_CLASSES) await classifyNow(model!);
      else say('Pretrained weights restored.');
    }),
);
byId('add-class').addEventListener('click', () => row.add());
byId('reset-classes').addEventListener('click', () => row.reset(3));
byId('clear-query').addEventListener('click', () => queryPad.clear());
otherDrawerButton.addEventListener('click', () => {
  const other = picker?.otherDrawing();
  if (!other) return;
  queryPad.showInk(other.ink);
  queryNote.textContent = `another drawer's ${other.character.name}`;
});

/** The engine on this browser's WebGPU; without one, the banner says so (with the engine's reason when it has one). */
async function startEngine(): Promise<string> {
  const missing = !(navigator as Navigator & { gpu?: GPU }).gpu;
  try {
    if (missing) throw new Error('this browser offers no WebGPU (navigator.gpu is undefined)');
    await init();
  } catch (e) {
    // The engine's message also covers Node; on this page only the browser's side is worth showing.
    if (!missing) byId('no-webgpu-reason').textContent = (e as Error).message;
    byId('no-webgpu').hidden = false;
    throw e;
  }
  const info = rt().gpu.info;
  const name = adapterName(info);
  byId('adapter').textContent = `${name}${info.isSoftware ? ' (a software adapter: the first classification compiles every shader on the CPU and may take tens of seconds)' : ''}`;
  return name;
}

async function start(): Promise<void> {
  say('Starting WebGPU…', 'busy');
  const adapter = await startEngine();
  say(`Loading the model and the Omniglot characters on ${adapter}…`, 'busy');
  const [m, pack] = await Promise.all([loadPretrained(), loadOmniglotTest()]);
  const c = m.config;
  byId('model-info').textContent =
    `ViT of ${c.imgSize}-px images in ${c.patchSize}-px patches (${c.imgSize / c.patchSize}×${c.imgSize / c.patchSize}), ${c.embedDim} wide, ${c.depth} blocks, ${c.numHeads} heads` +
    (m.trainedOn ? `; trained on ${m.trainedOn.length} Omniglot alphabets (${m.trainedOn.join(', ').replace(/_/g, ' ')}), so Omniglot's test characters are not new to it` : '');
  model = m;
  picker = new OmniglotPicker(pack, row);
  updateControls();
  say(`Ready on ${adapter}. Draw or pick at least ${MIN_CLASSES} classes, then a query.`);
  pageReady(adapter);
}

start().catch((e: Error) => {
  hook.error = e.message;
  say(`The page cannot run: ${e.message}`, 'error');
  pageFailed(e);
});
