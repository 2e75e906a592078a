// Picking Omniglot test characters as classes: an alphabet, then its characters as thumbnails (each
// one's first drawer); a click adds the character as a class, "5 at random" replaces the classes.
import { Rng } from '../../engine/browser.js';
import { MAX_CLASSES, type ClassRow } from './class-row.js';
import { byId, h, inkCanvas } from './dom.js';
import type { OmniglotCharacter, OmniglotTest } from './omniglot.js';

/** Characters drawn at random for "5 at random". */
const RANDOM_WAYS = 5;

export class OmniglotPicker {
  private readonly select = byId<HTMLSelectElement>('alphabet');
  private readonly grid = byId('character-grid');
  private readonly rng = new Rng(Date.now() >>> 0);

  constructor(
    private readonly pack: OmniglotTest,
    private readonly row: ClassRow,
  ) {
    for (const [alphabet, chars] of pack.alphabets) this.select.append(h('option', { value: alphabet, textContent: `${alphabet} (${chars.length})` }));
    this.select.addEventListener('change', () => this.showAlphabet());
    byId('random-five').addEventListener('click', () => this.pickRandom());
    this.showAlphabet();
  }

  private get characters(): OmniglotCharacter[] {
    return this.pack.alphabets.get(this.select.value) ?? [];
  }

  private showAlphabet(): void {
    this.grid.replaceChildren(
      ...this.characters.map((c) => {
        const b = h('button', { type: 'button', className: 'character', title: `add ${c.name} as a class` }, inkCanvas(c.images[0]));
        b.addEventListener('click', () => this.row.addCharacter(c));
        return b;
      }),
    );
  }

  /** RANDOM_WAYS characters of the alphabet shown, in place of the classes. */
  pickRandom(): void {
    const chosen = this.rng.shuffle([...this.characters]).slice(0, Math.min(RANDOM_WAYS, MAX_CLASSES));
    this.row.reset();
    for (const c of chosen) this.row.addCharacter(c);
  }

  /** Another drawer's image of one of the picked classes (at random), for the query; undefined when none is picked. */
  otherDrawing(): { character: OmniglotCharacter; ink: Uint8Array } | undefined {
    const picked = this.row.filled.filter((c) => c.picked);
    if (picked.length === 0) return undefined;
    const { character, drawer } = picked[this.rng.int(0, picked.length - 1)].picked!;
    const others = character.images.map((_, i) => i).filter((i) => i !== drawer);
    return { character, ink: character.images[others[this.rng.int(0, others.length - 1)]] };
  }
}
