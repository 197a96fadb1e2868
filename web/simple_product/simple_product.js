// The "simple product" of Section VII-F: load a TensorFlow.js model (or, runtime=onnx, a PyTorch member's ONNX
// export in ONNX Runtime Web), fetch every test image from the local static server, infer, compute top-1 accuracy, and tell the stats server when inference starts
// (GET /start) and stops (GET /stop?accuracy=...&n=...). Progress goes to GET /progress so a run that
// stalls can be recorded with the number of images it actually inferred.
//
// Query parameters (set by study.browser):
//   model     URL of the TF.js graph model's model.json (runtime=onnx: of the model.onnx)
//   images    URL of the image manifest: {"size": S, "images": [{"url": ..., "label": int}, ...]}
//   stats     origin of the Flask stats server, e.g. http://127.0.0.1:5123
//   backend   wasm (default) | webgl | cpu
//   batch     images per predict call (default 1)
//   runtime   tfjs (default, index.html) | onnx (onnx.html: ONNX Runtime Web wasm; TF.js only preprocesses, on cpu)
// The backend set-up (pickBackend, wasm from /node_modules/) is tfjs_backend.js, ONNX Runtime Web's (onnxModel)
// onnx_runtime.js, loaded before this file by the page of the runtime.
'use strict';

const PROGRESS_EVERY_MS = 250;

function log(message) {
  const el = document.getElementById('log');
  if (el) el.textContent += message + '\n';
  console.log(message);
}

function params() {
  const q = new URLSearchParams(window.location.search);
  const get = (key, fallback) => q.get(key) || fallback;
  const p = {
    model: get('model'), images: get('images'), stats: get('stats'),
    backend: get('backend', 'wasm'), batch: Math.max(1, parseInt(get('batch', '1'), 10) || 1),
    runtime: get('runtime', 'tfjs'),
  };
  for (const key of ['model', 'images', 'stats']) {
    if (!p[key]) throw new Error(`missing query parameter ${key}`);
  }
  if (!['tfjs', 'onnx'].includes(p.runtime)) throw new Error(`unknown runtime ${p.runtime} (tfjs | onnx)`);
  if (p.runtime === 'onnx' && p.backend !== 'wasm') throw new Error(`ONNX Runtime Web runs wasm here, not ${p.backend}`);
  return p;
}

// GET to the stats server (cross-origin; the server answers with Access-Control-Allow-Origin).
async function report(stats, path, query = {}) {
  const url = new URL(path, stats);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
  const response = await fetch(url, {method: 'GET', cache: 'no-store'});
  if (!response.ok) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

// The preprocessing of study.runtime.images.load_images: decode to RGB, bilinear resize to size x size with
// half-pixel centres and no antialiasing (= tf.image.resize in Python), / 255.
function preprocess(bitmap, size) {
  return tf.tidy(() => {
    const rgb = tf.browser.fromPixels(bitmap, 3).toFloat();  // (H, W, 3) in 0..255
    const resized = tf.image.resizeBilinear(rgb, [size, size], false, true);
    return resized.div(255).expandDims(0);
  });
}

// A JPEG without its Exif (APP1) segments: PIL's decode ignores the Exif orientation, and the browser's
// decoders would apply it, so it is removed before decoding. Other formats pass through.
function withoutExif(bytes) {
  const b = new Uint8Array(bytes);
  if (b.length < 4 || b[0] !== 0xFF || b[1] !== 0xD8) return bytes;
  const keep = [b.subarray(0, 2)];
  let i = 2;
  while (i + 4 <= b.length && b[i] === 0xFF) {
    const marker = b[i + 1];
    if (marker === 0xDA || marker === 0xD9) break;  // start of scan: the rest is image data
    const length = (b[i + 2] << 8) | b[i + 3];
    const isExif = marker === 0xE1 && b[i + 4] === 0x45 && b[i + 5] === 0x78 && b[i + 6] === 0x69 && b[i + 7] === 0x66;
    if (!isExif) keep.push(b.subarray(i, i + 2 + length));
    i += 2 + length;
  }
  keep.push(b.subarray(i));
  return new Blob(keep, {type: 'image/jpeg'});
}

async function decode(url) {
  const response = await fetch(url, {cache: 'no-store'});
  if (!response.ok) throw new Error(`image ${url} answered ${response.status}`);
  const bytes = await response.arrayBuffer();
  const stripped = withoutExif(bytes);
  const blob = stripped instanceof Blob ? stripped : new Blob([bytes]);
  // No colour management or premultiplication: the pixel values as stored, like PIL's convert('RGB').
  return createImageBitmap(blob, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
}

// A TF.js graph model, warmed up; infer(x) -> {ids: top-1 per image, ms: the inference alone}.
async function tfjsClassifier(url, size) {
  const model = await tf.loadGraphModel(url);
  tf.tidy(() => model.predict(tf.zeros([1, size, size, 3])).dataSync());  // warm-up (kernels, shaders)
  return {
    async infer(x) {
      const t = performance.now();
      const y = model.predict(x);
      const top = y.argMax(-1);
      const ids = Array.from(await top.data());
      const ms = performance.now() - t;
      tf.dispose([y, top]);
      return {ids, ms};
    },
  };
}

// An ONNX model in ONNX Runtime Web (onnx_runtime.js), warmed up; infer(x) as tfjsClassifier's.
async function onnxClassifier(url, size) {
  const model = await onnxModel(url);
  const zeros = tf.zeros([1, size, size, 3]);
  await model.predict(zeros);  // warm-up (session, wasm kernels)
  zeros.dispose();
  return {
    async infer(x) {
      let t = 0;
      const {values, shape} = await model.predict(x, () => { t = performance.now(); });
      const [n, classes] = shape;
      const ids = [];
      for (let i = 0; i < n; i += 1) {
        let best = 0;
        for (let k = 1; k < classes; k += 1) if (values[i * classes + k] > values[i * classes + best]) best = k;
        ids.push(best);
      }
      return {ids, ms: performance.now() - t};
    },
  };
}

async function run() {
  const p = params();
  window.addEventListener('unhandledrejection', (e) => fail(p, e.reason));
  // runtime=onnx: TF.js preprocesses on its cpu backend, ONNX Runtime Web's wasm provider infers
  const backend = p.runtime === 'onnx' ? (await pickBackend('cpu'), 'wasm') : await pickBackend(p.backend);
  log(`runtime ${p.runtime}, backend ${backend}`);
  const manifest = await (await fetch(p.images, {cache: 'no-store'})).json();
  const size = manifest.size;

  await report(p.stats, '/start', {backend});
  const model = p.runtime === 'onnx' ? await onnxClassifier(p.model, size) : await tfjsClassifier(p.model, size);

  const predictions = [];
  let correct = 0;
  let inferMs = 0;
  let lastProgress = performance.now();
  const images = manifest.images;
  for (let i = 0; i < images.length; i += p.batch) {
    const chunk = images.slice(i, i + p.batch);
    const inputs = [];
    for (const item of chunk) {
      const bitmap = await decode(item.url);
      inputs.push(preprocess(bitmap, size));
      bitmap.close();
    }
    const x = inputs.length === 1 ? inputs[0] : tf.concat(inputs, 0);
    const {ids, ms} = await model.infer(x);
    inferMs += ms;
    tf.dispose([...inputs, x]);
    ids.forEach((id, k) => {
      predictions.push(id);
      if (id === chunk[k].label) correct += 1;
    });
    if (performance.now() - lastProgress >= PROGRESS_EVERY_MS) {
      lastProgress = performance.now();
      report(p.stats, '/progress', {n: predictions.length, correct}).catch(() => {});
    }
  }
  const n = predictions.length;
  const result = await report(p.stats, '/stop', {
    accuracy: n ? correct / n : 0, n, correct, ms_per_image: n ? inferMs / n : 0, backend,
    predictions: predictions.join(','),
  });
  log(`done: ${correct}/${n} correct, ${JSON.stringify(result)}`);
  document.title = 'simple product: done';
}

function fail(p, err) {
  const message = (err && err.stack) ? err.stack : String(err);
  log(`error: ${message}`);
  document.title = 'simple product: error';
  if (p && p.stats) report(p.stats, '/error', {message: message.slice(0, 2000)}).catch(() => {});
}

window.addEventListener('load', () => {
  let p = null;
  try {
    p = params();
  } catch (err) {
    fail(null, err);
    return;
  }
  run().catch((err) => fail(p, err));
});
