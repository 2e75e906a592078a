// Teacher EMA (docs/algorithm.md §6): θ_t ← m·θ_t + (1 − m)·θ_s for every teacher parameter, one dispatch over the arena.
import type { ParameterArena } from '../arena.js';

/**
 * The teacher must share the student's layout (built `new ParameterArena(specs, { like: student })`):
 * parameters only the student has (masked_embed) are holes in the teacher, which the EMA also blends
 * and nobody reads, so the update stays one elementwise dispatch with no index table.
 */
export function emaUpdate(teacher: ParameterArena, student: ParameterArena, momentum: number): void {
  if (!(momentum >= 0 && momentum <= 1)) throw new Error(`emaUpdate: momentum ${momentum} is outside [0, 1]`);
  teacher.data.blendFrom(student.data, momentum, 1 - momentum, 'emaUpdate');
}
