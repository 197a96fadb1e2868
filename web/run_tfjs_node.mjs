// RQ1 "JavaScript" row (paper Table IV): a TF.js graph model run in Node.js on the wasm backend.
// node web/run_tfjs_node.mjs --model DIR/model.json --input x.f32 --shape N,H,W,C --output y.f32
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { cliArgs, fail, measure, report } from './rq1_common.mjs';

const args = cliArgs();
const require = createRequire(import.meta.url);
setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
setThreadsCount(args.threads);
if (!(await tf.setBackend('wasm'))) fail('the TF.js wasm backend did not initialise');
await tf.ready();

// A file-system IOHandler: model.json plus its weight shards, exactly what a browser would fetch.
function fileHandler(modelJson) {
  return {
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
  };
}

const t0 = performance.now();
const model = await tf.loadGraphModel(fileHandler(args.model));
const loadMs = performance.now() - t0;
const inputName = model.inputs[0].name;

const result = await measure(args, async (values) => {
  const x = tf.tensor(values, [1, ...args.shape.slice(1)], 'float32');
  const y = model.execute({ [inputName]: x });
  const out = Array.isArray(y) ? y[0] : (y instanceof tf.Tensor ? y : Object.values(y)[0]);
  const data = await out.data();
  const shape = out.shape;
  tf.dispose([x, y]);
  return { values: data, shape };
});
report({ runtime: 'tfjs-node-wasm', backend: tf.getBackend(), tfjs_version: tf.version.tfjs, load_ms: loadMs, ...result });
