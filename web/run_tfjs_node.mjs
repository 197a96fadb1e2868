// RQ1 "JavaScript" row (paper Table IV): a TF.js graph model run in Node.js on the wasm backend.
// node web/run_tfjs_node.mjs --model DIR/model.json --input x.f32 --shape N,H,W,C --output y.f32
import { loadGraphModelFromFile, tf, useBackend } from './tfjs_node.mjs';
import { cliArgs, fail, measure, report } from './rq1_common.mjs';

const args = cliArgs();
try {
  await useBackend('wasm', args.threads);
} catch (err) {
  fail(err.message);
}

const t0 = performance.now();
const model = await loadGraphModelFromFile(args.model);
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
