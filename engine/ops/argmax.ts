// argmax along one axis (torch.argmax(x, dim, keepdim)): the cosine argmax's row kernel over rows of
// that axis, moved last by a copy when it is not. An index has no gradient.
import { rowArgmaxKernel } from '../../kernels/cosine-argmax.js';
import { spillGroups } from '../../kernels/kernel.js';
import { noGrad } from '../autograd.js';
import { normAxis, numel } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { assertFloat, launch, opLabel } from './launch.js';
import { permute } from './layout.js';

/**
 * The index of the largest value along `axis` (default the last), as int32; ties go to the lowest
 * index, as torch's. Unlike torch, NaN is never the largest (an all-NaN run gives 0).
 */
export function argmax(x: Tensor, axis = -1, keepdim = false): Tensor<'i32'> {
  assertFloat('argmax', x);
  const label = opLabel(`argmax[${axis}]`, [x]);
  if (x.rank === 0) throw new Error(`${label}: a scalar has no axis to take the argmax along`);
  const a = normAxis('argmax', axis, x.rank);
  const M = x.shape[a];
  if (M === 0) throw new Error(`${label}: cannot take the argmax of an empty axis`);
  const last = a === x.rank - 1;
  const rowsFirst = noGrad(() => (last ? x : permute(x, [...[...x.shape.keys()].filter((d) => d !== a), a])));
  const shape = keepdim ? x.shape.map((n, d) => (d === a ? 1 : n)) : x.shape.filter((_, d) => d !== a);
  const out = empty(shape, 'i32', label);
  const rows = numel(x.shape) / M;
  launch(rowArgmaxKernel(), { rows, M }, [out], [rowsFirst], spillGroups(Math.ceil(rows / 64)), label);
  if (!last) rowsFirst.dispose();
  return out;
}
