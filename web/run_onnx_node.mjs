// PyTorch counterpart of the JavaScript row: an ONNX model run in Node.js by onnxruntime-web (wasm).
// node web/run_onnx_node.mjs --model model.onnx --input x.f32 --shape N,C,H,W --output y.f32
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';
import { cliArgs, measure, report } from './rq1_common.mjs';

const args = cliArgs();
ort.env.wasm.numThreads = args.threads;
ort.env.wasm.proxy = false;

const t0 = performance.now();
const session = await ort.InferenceSession.create(readFileSync(args.model), { executionProviders: ['wasm'] });
const loadMs = performance.now() - t0;
const inputName = session.inputNames[0];
const outputName = session.outputNames[0];

const result = await measure(args, async (values) => {
  const feeds = { [inputName]: new ort.Tensor('float32', values, [1, ...args.shape.slice(1)]) };
  const out = (await session.run(feeds))[outputName];
  return { values: out.data, shape: out.dims };
});
report({ runtime: 'onnxruntime-web-wasm', backend: 'wasm', ort_version: ort.env.versions?.web ?? null, load_ms: loadMs, ...result });
