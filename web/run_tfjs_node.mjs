// RQ1 "JavaScript" row (paper Table IV): a TF.js graph model run in Node.js on the wasm backend.
// node web/run_tfjs_node.mjs --model DIR/model.json --input x.f32 --shape N,H,W,C --output y.f32
import { loadGraphModelFromFile, tf, useBackend } from './tfjs_node.mjs';
import { cliArgs, fail, measure, report } from './rq1_common.mjs';
import { graphModelRunner } from './rq1_measure.mjs';

const args = cliArgs();
try {
  await useBackend('wasm', args.threads);
} catch (err) {
  fail(err.message);
}

const t0 = performance.now();
const model = await loadGraphModelFromFile(args.model);
const loadMs = performance.now() - t0;
const result = await measure(args, graphModelRunner(tf, model, args.shape));
report({ runtime: 'tfjs-node-wasm', backend: tf.getBackend(), tfjs_version: tf.version.tfjs, load_ms: loadMs, ...result });
