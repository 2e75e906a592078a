// The student/teacher pair of SMKD (docs/algorithm.md §6): two backbone+head networks with PyTorch's `backbone.*`
// and `head.*` names; the teacher is trained only by EMA of the student, never by gradients.
import { emaUpdate, fill, keep, type Tensor, Module } from '../engine/api.js';
import type { HeadConfig, VitConfig } from './configs.js';
import { DinoHead } from './head.js';
import { VisionTransformer } from './vit.js';

/** A backbone and its projection head, named as the reference code's MultiCropWrapper (docs/algorithm.md §1.10). */
export class SmkdNetwork extends Module {
  readonly backbone: VisionTransformer;
  readonly head: DinoHead;

  constructor(vit: VitConfig, head: Omit<HeadConfig, 'inDim'>) {
    super();
    this.backbone = this.registerModule('backbone', new VisionTransformer(vit));
    this.head = this.registerModule('head', new DinoHead({ ...head, inDim: vit.embedDim }));
  }
}

export interface StudentTeacherOptions {
  vit: VitConfig;
  head: Omit<HeadConfig, 'inDim'>;
  /** Seed of the student's initialisation. */
  seed?: number;
  /** Give the backbones timm's classifier `head` over this many classes (the cross-entropy baseline). */
  numClasses?: number;
}

export class StudentTeacher {
  readonly student: SmkdNetwork;
  readonly teacher: SmkdNetwork;
  /** Centre of the teacher's [cls] outputs, the reference code's buffer shape [1, K]. */
  readonly center: Tensor<'f32'>;
  /** Centre of the teacher's patch outputs, the reference code's buffer shape [1, 1, K]. */
  readonly center2: Tensor<'f32'>;

  constructor(opts: StudentTeacherOptions) {
    this.student = new SmkdNetwork({ ...opts.vit, maskToken: true, numClasses: opts.numClasses }, opts.head).build({ seed: opts.seed ?? 0, label: 'student' });
    // Same layout as the student (a hole where masked_embed is), no drop path, no gradients.
    this.teacher = new SmkdNetwork({ ...opts.vit, maskToken: false, dropPath: 0, numClasses: opts.numClasses }, opts.head).build({
      like: this.student,
      requiresGrad: false,
      label: 'teacher',
    });
    this.teacher.arena.copyFrom(this.student.arena);
    this.teacher.eval();
    const K = opts.head.outDim;
    this.center = keep(fill([1, K], 0));
    this.center2 = keep(fill([1, 1, K], 0));
  }

  /** teacher <- m * teacher + (1 - m) * student over every shared parameter, one dispatch. */
  updateTeacher(momentum: number): void {
    emaUpdate(this.teacher.arena, this.student.arena, momentum);
  }

  dispose(): void {
    this.student.dispose();
    this.teacher.dispose();
    this.center.dispose();
    this.center2.dispose();
  }
}
