// The simple product's quick-check path in Node.js: pure @tensorflow/tfjs + the wasm (or cpu) backend,
// no tfjs-node. It infers images that Python already preprocessed (study.runtime.images.load_images), so it
// checks the converted model and the backend alone; the browser page checks the whole product.
//
//   node web/run_simple_product_node.mjs --model DIR/model.json --inputs inputs.bin --meta inputs.json \
//        [--backend wasm|cpu] [--batch 1]
//
// inputs.bin: float32 little-endian, shape meta.shape = [N, S, S, 3]; inputs.json: {"shape": [...],
// "labels": [...]}. Prints one JSON line: backend, n, correct, accuracy, ms_per_image, load_ms, predictions.
import fs from 'node:fs';
import path from 'node:path';
import { loadGraphModelFromFile, tf, useBackend } from './tfjs_node.mjs';

function parseArgs(argv) {
  const args = {backend: 'wasm', batch: '1'};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) {
      throw new Error(`bad argument ${argv[i]}; usage: --model model.json --inputs x.bin --meta x.json [--backend wasm|cpu] [--batch N]`);
    }
    args[argv[i].slice(2)] = argv[i + 1];
  }
  for (const key of ['model', 'inputs', 'meta']) {
    if (!args[key]) throw new Error(`missing --${key}`);
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  await useBackend(args.backend);

  const meta = JSON.parse(fs.readFileSync(args.meta, 'utf8'));
  const raw = fs.readFileSync(args.inputs);
  const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const [n, h, w, c] = meta.shape;
  if (data.length !== n * h * w * c) throw new Error(`inputs hold ${data.length} floats, meta.shape says ${meta.shape}`);

  const t0 = performance.now();
  const model = await loadGraphModelFromFile(path.resolve(args.model));
  const loadMs = performance.now() - t0;
  tf.tidy(() => model.predict(tf.zeros([1, h, w, c])).dataSync());  // warm-up, not timed

  const batch = Math.max(1, parseInt(args.batch, 10));
  const per = h * w * c;
  const predictions = [];
  let inferMs = 0;
  for (let i = 0; i < n; i += batch) {
    const m = Math.min(batch, n - i);
    const x = tf.tensor4d(data.subarray(i * per, (i + m) * per), [m, h, w, c]);
    const t = performance.now();
    const y = model.predict(x);
    const top = y.argMax(-1);
    const ids = top.dataSync();
    inferMs += performance.now() - t;
    predictions.push(...ids);
    tf.dispose([x, y, top]);
  }
  const correct = predictions.filter((p, i) => p === meta.labels[i]).length;
  const result = {
    backend: tf.getBackend(), n, correct, accuracy: n ? correct / n : null,
    ms_per_image: n ? inferMs / n : null, load_ms: loadMs, predictions,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err) => {
  process.stderr.write(`error: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
