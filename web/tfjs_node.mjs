// TF.js in plain Node.js (no tfjs-node): backend set-up and a file-system model loader, shared by the
// RQ1 runner (run_tfjs_node.mjs) and the simple product's quick-check path (run_simple_product_node.mjs).
import { readFileSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);
export { tf };

// Select `backend` ('wasm' or 'cpu'); the wasm binaries come from web/node_modules, never a CDN.
export async function useBackend(backend = 'wasm', threads = 1) {
  if (backend === 'wasm') {
    setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}${sep}`);
    setThreadsCount(threads);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`the TF.js ${backend} backend did not initialise`);
  await tf.ready();
  return tf.getBackend();
}

// model.json plus its weight shards read from disk: exactly what a browser would fetch.
export async function loadGraphModelFromFile(modelJson) {
  return tf.loadGraphModel({
    async load() {
      const manifest = JSON.parse(readFileSync(modelJson, 'utf8'));
      const weightSpecs = [];
      const buffers = [];
      for (const group of manifest.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const path of group.paths) buffers.push(readFileSync(join(dirname(modelJson), path)));
      }
      const weightData = new Uint8Array(Buffer.concat(buffers)).buffer;
      return { ...manifest, weightSpecs, weightData };
    },
  });
}
