// Imported PyTorch checkpoints served with `?model=` label like the CLI in the page.
import { test } from 'node:test';
import { importedModelMatchesCli } from './compare.mjs';

test('an imported PyTorch BiSeNetV1 runs in the page via ?model= and matches the CLI', async () => {
  await importedModelMatchesCli('resnet18.pth');
});

test('an imported PyTorch BiSeNetV2 runs in the page via ?model= and matches the CLI', async () => {
  await importedModelMatchesCli('bisenetv2.pth');
});

test('an imported BiSeNetV2 of the pixel-shuffle layout matches the CLI on WebGPU', async () => {
  await importedModelMatchesCli('bisenetv2_shuffle.pth', 'webgpu');
});
