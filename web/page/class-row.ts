// The row of classes: one card per class, each a small drawing pad with a name, filled by drawing or by
// picking an Omniglot character (its first drawer's image). Empty cards are left out of classification.
import { DrawingPad } from './drawing-pad.js';
import { h } from './dom.js';
import type { OmniglotCharacter } from './omniglot.js';

export const MIN_CLASSES = 2;
export const MAX_CLASSES = 10;

export interface ClassCard {
  pad: DrawingPad;
  nameInput: HTMLInputElement;
  /** The Omniglot character shown, and which drawer's image, until the card is cleared. */
  picked?: { character: OmniglotCharacter; drawer: number };
  element: HTMLElement;
}

export class ClassRow {
  readonly cards: ClassCard[] = [];
  private made = 0;

  /** `onChange`: a card was added, removed, drawn on, cleared or renamed. */
  constructor(
    private readonly container: HTMLElement,
    private readonly onChange: () => void,
  ) {}

  /** The cards that hold a drawing: the classes. */
  get filled(): ClassCard[] {
    return this.cards.filter((c) => !c.pad.empty);
  }

  /** A new empty card (none past MAX_CLASSES). */
  add(name = `class ${++this.made}`): ClassCard | undefined {
    if (this.cards.length >= MAX_CLASSES) return undefined;
    const pad = new DrawingPad(`drawing of ${name}`);
    const nameInput = h('input', { type: 'text', value: name, className: 'class-name', spellcheck: false });
    const clear = h('button', { type: 'button', className: 'small', textContent: 'clear' });
    const remove = h('button', { type: 'button', className: 'small ghost', textContent: '✕', title: 'remove this class' });
    const element = h('figure', { className: 'class-card' }, pad.canvas, h('figcaption', {}, nameInput, h('span', { className: 'card-buttons' }, clear, remove)));
    const card: ClassCard = { pad, nameInput, element };
    pad.onChange = () => this.onChange();
    nameInput.addEventListener('input', () => this.onChange());
    clear.addEventListener('click', () => {
      card.picked = undefined;
      pad.clear();
    });
    remove.addEventListener('click', () => this.remove(card));
    this.cards.push(card);
    this.container.append(element);
    this.onChange();
    return card;
  }

  /** A card showing drawer `drawer`'s image of an Omniglot character (the first empty card, or a new one). */
  addCharacter(character: OmniglotCharacter, drawer = 0): ClassCard | undefined {
    const card = this.cards.find((c) => c.pad.empty) ?? this.add();
    if (!card) return undefined;
    // 'Tagalog/character03' as 'Tagalog-03': short enough for a card, as the classify example names them.
    card.nameInput.value = character.name.replace('/character', '-');
    card.nameInput.title = character.name;
    card.picked = { character, drawer };
    card.pad.showInk(character.images[drawer]);
    return card;
  }

  remove(card: ClassCard): void {
    const i = this.cards.indexOf(card);
    if (i < 0) return;
    this.cards.splice(i, 1);
    card.element.remove();
    this.onChange();
  }

  /** No cards left; `empty` fresh ones added. */
  reset(empty = 0): void {
    for (const c of [...this.cards]) this.remove(c);
    this.made = 0;
    for (let i = 0; i < empty; i++) this.add();
  }
}
