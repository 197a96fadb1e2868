// RQ1 "JavaScript" row in the browser: the TF.js graph model of the deployment matrix in headless Chromium.
// Same protocol as web/run_tfjs_node.mjs: raw float32 inputs, every image at batch 1, then `repeats` timed
// runs of image 0 after `warmup` (rq1_measure.mjs). The raw outputs go back to study.deployment.matrix as a POST of
// float32 bytes to /outputs, the timings as JSON to /report; a failure goes to /error.
//
// Query parameters (set by study.deployment.matrix.run_chromium): model (model.json URL), inputs (raw float32 URL),
// shape (N,H,W,C), warmup, repeats, threads, backend (wasm default).
import { graphModelRunner, measureRuns } from '/rq1_measure.mjs';

const q = new URLSearchParams(window.location.search);

function log(message) {
  document.getElementById('log').textContent += `${message}\n`;
  console.log(message);
}

async function post(path, body, type) {
  const response = await fetch(path, { method: 'POST', body, headers: { 'Content-Type': type }, cache: 'no-store' });
  if (!response.ok) throw new Error(`POST ${path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

function args() {
  for (const key of ['model', 'inputs', 'shape']) if (!q.get(key)) throw new Error(`missing query parameter ${key}`);
  const shape = q.get('shape').split(',').map(Number);
  if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d <= 0)) throw new Error(`shape ${q.get('shape')} is not N,H,W,C`);
  return { model: q.get('model'), inputs: q.get('inputs'), shape, backend: q.get('backend') || 'wasm',
           warmup: Number(q.get('warmup') || 3), repeats: Number(q.get('repeats') || 20), threads: Number(q.get('threads') || 1) };
}

async function main() {
  const a = args();
  const backend = await pickBackend(a.backend, a.threads);  // web/simple_product/tfjs_backend.js
  const response = await fetch(a.inputs, { cache: 'no-store' });
  if (!response.ok) throw new Error(`inputs ${a.inputs} answered ${response.status}`);
  const data = new Float32Array(await response.arrayBuffer());
  const expected = a.shape.reduce((x, y) => x * y, 1);
  if (data.length !== expected) throw new Error(`inputs have ${data.length} floats, shape ${a.shape} needs ${expected}`);

  const t0 = performance.now();
  const model = await tf.loadGraphModel(a.model);
  const loadMs = performance.now() - t0;
  const { outputs, ...result } = await measureRuns({ data, ...a }, graphModelRunner(tf, model, a.shape));
  await post('/outputs', outputs.buffer, 'application/octet-stream');
  await post('/report', JSON.stringify({ runtime: 'tfjs-chromium-wasm', backend, tfjs_version: tf.version.tfjs,
                                         user_agent: navigator.userAgent, load_ms: loadMs, ...result }), 'application/json');
  log(`done: ${a.shape[0]} images on ${backend}, load ${loadMs.toFixed(1)} ms`);
}

main().catch((err) => {
  const message = (err && err.stack) ? err.stack : String(err);
  log(`error: ${message}`);
  post('/error', JSON.stringify({ message: message.slice(0, 2000) }), 'application/json').catch(() => {});
});
