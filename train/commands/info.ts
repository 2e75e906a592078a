// `smkd info`: the WebGPU adapter this machine gives, its features and limits.
import { Command } from 'commander';
import { describeGpu, getGpu } from '../../engine/index.js';

export function infoCommand(): Command {
  return new Command('info').description('the WebGPU adapter, its features and limits').action(async () => {
    console.log(describeGpu(await getGpu()));
  });
}
