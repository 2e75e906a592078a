// conv2d (torch.nn.functional.conv2d, groups 1, dilation 1) as unfold + the matmul kernel: the input's
// receptive fields as rows [B, OH·OW, C·KH·KW], times the weight [O, C·KH·KW]ᵀ, plus the bias. Autograd
// comes from unfold's backward (fold, kernels/conv.ts) and the matmul's. For hybrid stems (a convolutional
// stem before the patch embedding) and small CNNs; the ViT's own patch embedding uses the same idea.
import { foldKernel, unfoldKernel } from '../../kernels/conv.js';
import { grid1d } from '../../kernels/kernel.js';
import { recordOp } from '../autograd.js';
import { tidy } from '../scope.js';
import { fmt } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { assertFloat, launch, opLabel } from './launch.js';
import { permute, reshape } from './layout.js';
import { linear } from './matmul.js';

export interface Conv2dOptions {
  /** Step of the window, both axes (default 1). */
  stride?: number;
  /** Zeros added on every side, both axes (default 0). */
  padding?: number;
}

/** x [B, C, H, W] -> rows [B, OH·OW, C·KH·KW] of the windows of a KH x KW kernel; differentiable. */
function unfoldRows(x: Tensor, KH: number, KW: number, stride: number, pad: number, label: string): Tensor<'f32'> {
  const [B, C, H, W] = x.shape;
  const OH = Math.floor((H + 2 * pad - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - KW) / stride) + 1;
  const geometry = { C, H, W, OH, OW, KH, KW, stride, pad };
  const rows = empty([B, OH * OW, C * KH * KW], 'f32', label);
  launch(unfoldKernel(), { n: rows.size, ...geometry }, [rows], [x], grid1d(rows.size), label);
  recordOp('unfold', [x], [rows], ([g]) => {
    const dx = empty(x.shape, 'f32', `${label} backward`);
    launch(foldKernel(), { n: dx.size, ...geometry }, [dx], [g!], grid1d(dx.size), `${label} backward`);
    return [dx];
  });
  return rows;
}

/** 2-D convolution: x [B, C, H, W], weight [O, C, KH, KW], bias [O] -> [B, O, OH, OW], OH = floor((H + 2·padding - KH) / stride) + 1. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor, opts: Conv2dOptions = {}): Tensor<'f32'> {
  const { stride = 1, padding = 0 } = opts;
  const label = opLabel('conv2d', bias ? [x, weight, bias] : [x, weight]);
  for (const t of [x, weight, ...(bias ? [bias] : [])]) assertFloat('conv2d', t);
  if (x.rank !== 4 || weight.rank !== 4) throw new Error(`${label}: x must be [B, C, H, W] and weight [O, C, KH, KW], got ${fmt(x.shape)} and ${fmt(weight.shape)}`);
  const [B, C, H, W] = x.shape;
  const [O, Cw, KH, KW] = weight.shape;
  if (Cw !== C) throw new Error(`${label}: weight has ${Cw} input channels, x has ${C}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== O)) throw new Error(`${label}: bias must be [${O}], got ${fmt(bias.shape)}`);
  if (!(Number.isInteger(stride) && stride >= 1 && Number.isInteger(padding) && padding >= 0))
    throw new Error(`${label}: stride must be a whole number >= 1 and padding >= 0, got ${stride} and ${padding}`);
  const OH = Math.floor((H + 2 * padding - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * padding - KW) / stride) + 1;
  if (OH < 1 || OW < 1) throw new Error(`${label}: a ${KH}x${KW} kernel does not fit in ${H}x${W} with padding ${padding}`);
  // The rows and the matmul's output are freed on return (the tape keeps what backward needs).
  return tidy(() => {
    const rows = unfoldRows(x, KH, KW, stride, padding, label);
    const y = linear(rows, reshape(weight, [O, C * KH * KW]), bias);
    return permute(reshape(y, [B, OH, OW, O]), [0, 3, 1, 2]);
  });
}
