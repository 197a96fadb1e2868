// The simple product, released (study.releases.product): a person picks or drops an image and sees the chosen
// release's answer. Reads /manifest.json (the releases: published versions or sweep members, their notes, the
// version-diff summaries, fidelity, the decision's default) and loads each release's model from its model_url: a
// TF.js graph model (/models/<id>/model.json), or for a PyTorch member (runtime "onnx") its ONNX export
// (/models/<id>/model.onnx) in ONNX Runtime Web, wasm. TF.js, its wasm backend and ONNX Runtime Web come from the
// project's npm folder (pickBackend: /simple_product/tfjs_backend.js; onnxModel: /simple_product/onnx_runtime.js).
//
// Query parameters: release=<id> (default: the manifest's, the decision's choice), backend=wasm|webgl|cpu.
// For tests and scripts the page keeps <body data-state="loading|ready|predicting|done|error" data-seq="N">:
// seq counts handled uploads (answered or refused), so a caller can wait for its own.
'use strict';

const $ = (id) => document.getElementById(id);
const page = {manifest: null, release: null, model: null, backend: null, bitmap: null, previewUrl: null,
              latency: {}, seq: 0, busy: Promise.resolve()};

function setState(state) {
  document.body.dataset.state = state;
}

function message(text) {
  $('message').textContent = text || '';
}

function releaseById(id) {
  return page.manifest.releases.find((r) => r.id === id);
}

// --- the one preprocessing (study.runtime.images) --------------------------------------------------------------
// Decode to RGB, bilinear resize to size x size with half-pixel centres and no antialiasing (= tf.image.resize in
// Python), / 255. As in web/simple_product/simple_product.js.
function preprocess(bitmap, size) {
  return tf.tidy(() => {
    const rgb = tf.browser.fromPixels(bitmap, 3).toFloat();
    const resized = tf.image.resizeBilinear(rgb, [size, size], false, true);
    return resized.div(255).expandDims(0);
  });
}

// A JPEG without its Exif (APP1) segments: PIL's decode ignores the Exif orientation, the browser's would apply it.
function withoutExif(bytes) {
  const b = new Uint8Array(bytes);
  if (b.length < 4 || b[0] !== 0xFF || b[1] !== 0xD8) return new Blob([bytes]);
  const keep = [b.subarray(0, 2)];
  let i = 2;
  while (i + 4 <= b.length && b[i] === 0xFF) {
    const marker = b[i + 1];
    if (marker === 0xDA || marker === 0xD9) break;
    const length = (b[i + 2] << 8) | b[i + 3];
    const isExif = marker === 0xE1 && b[i + 4] === 0x45 && b[i + 5] === 0x78 && b[i + 6] === 0x69 && b[i + 7] === 0x66;
    if (!isExif) keep.push(b.subarray(i, i + 2 + length));
    i += 2 + length;
  }
  keep.push(b.subarray(i));
  return new Blob(keep, {type: 'image/jpeg'});
}

// The image type from the file's first bytes (what it is, not what its name says).
function sniff(b) {
  const starts = (...sig) => sig.every((v, k) => b[k] === v);
  if (starts(0xFF, 0xD8, 0xFF)) return 'image/jpeg';
  if (starts(0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A)) return 'image/png';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  if (starts(0x52, 0x49, 0x46, 0x46) && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return 'image/webp';
  if (starts(0x42, 0x4D)) return 'image/bmp';
  return null;
}

// --- one upload ---------------------------------------------------------------------------------------------------
async function readImage(file) {
  const limits = page.manifest.limits;
  if (file.size > limits.max_bytes) {
    throw new Error(`${file.name} is too large (${(file.size / 2 ** 20).toFixed(1)} MB; the limit is ` +
                    `${(limits.max_bytes / 2 ** 20).toFixed(0)} MB)`);
  }
  if (file.size === 0) throw new Error(`${file.name} is empty`);
  const bytes = await file.arrayBuffer();
  const kind = sniff(new Uint8Array(bytes, 0, Math.min(16, bytes.byteLength)));
  if (!kind) {
    const said = file.type ? ` (${file.type})` : '';
    if (file.type.startsWith('image/')) {
      throw new Error(`${file.name}: unsupported image type${said}; give ${limits.types.join(', ')}`);
    }
    throw new Error(`${file.name} is not an image${said}; give a photo (${limits.types.join(', ')})`);
  }
  if (!limits.types.includes(kind)) throw new Error(`${file.name}: unsupported image type ${kind}`);
  let bitmap;
  try {
    // No colour management or premultiplication: the pixel values as stored, like PIL's convert('RGB').
    bitmap = await createImageBitmap(withoutExif(bytes), {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
  } catch (err) {
    throw new Error(`${file.name} looks like ${kind} but cannot be decoded (damaged or truncated?)`);
  }
  return {bitmap, url: URL.createObjectURL(new Blob([bytes], {type: kind})), name: file.name};
}

async function handleFile(file) {
  let image = null;
  try {
    image = await readImage(file);
  } catch (err) {
    message(err.message);
  }
  if (image) {
    message('');
    if (page.bitmap) page.bitmap.close();
    if (page.previewUrl) URL.revokeObjectURL(page.previewUrl);
    page.bitmap = image.bitmap;
    page.previewUrl = image.url;
    page.imageName = image.name;
    $('preview').src = image.url;
    await predict();
  }
  page.seq += 1;
  document.body.dataset.seq = String(page.seq);
}

// --- inference ----------------------------------------------------------------------------------------------------
async function predict() {
  const release = page.release;
  if (!page.model || !page.bitmap) return;
  setState('predicting');
  const size = release.input_size;
  const x = preprocess(page.bitmap, size);
  const {probabilities, ms} = await page.model.infer(x);  // the latency includes the whole inference
  tf.dispose(x);
  const order = Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a]);
  const top = order.slice(0, page.manifest.limits.top_k);
  const rows = top.map((k) => {
    const tr = document.createElement('tr');
    const p = probabilities[k];
    tr.dataset.index = String(k);
    tr.dataset.probability = String(p);
    tr.innerHTML = '<td></td><td></td><td class="bar"><span></span></td>';
    tr.cells[0].textContent = release.class_names[k] ?? `class ${k}`;
    tr.cells[1].textContent = `${(100 * p).toFixed(2)} %`;
    tr.querySelector('span').style.width = `${Math.round(120 * p)}px`;
    return tr;
  });
  $('predictions').tBodies[0].replaceChildren(...rows);
  page.latency[release.id] = ms;
  $('latency').textContent = `${ms.toFixed(1)} ms (this inference, ${size}x${size}, batch 1)`;
  $('latency').dataset.ms = String(ms);
  $('backend-used').textContent = page.model.backend;
  $('status').textContent = `${release.class_names[top[0]]} — ${page.imageName}, ${release.version}`;
  $('answer').dataset.release = release.id;
  showChanges(release);
  setState('done');
}

// --- releases -----------------------------------------------------------------------------------------------------
function short(hash) {
  return hash ? String(hash).slice(0, 16) : '–';
}

function fidelityText(f) {
  if (!f || f.faithful === null || f.faithful === undefined) return [f && f.status === 'stale' ? 'stale record' : 'not measured', ''];
  const agreement = f.agreement === null || f.agreement === undefined ? '' : `, top-1 agreement ${f.agreement.toFixed(3)}`;
  if (f.faithful) return [`faithful (${f.format}${agreement})`, 'ok'];
  return [`NOT faithful: ${f.status} in ${f.format}${agreement}`, 'warn'];
}

function optionLabel(r) {
  const marks = [];
  if (r.id === page.manifest.default) marks.push('★ decision\'s choice');
  if (r.fidelity && r.fidelity.faithful === false) marks.push('⚠ not faithful');
  if (!r.servable) marks.push('not servable');
  const name = page.manifest.mode === 'versions' ? `${r.version} (${r.member})` : r.member;
  return marks.length ? `${name} — ${marks.join(', ')}` : name;
}

function previousOf(release) {
  const list = page.manifest.releases;
  const i = list.findIndex((r) => r.id === release.id);
  return i > 0 ? list[i - 1] : null;
}

function delta(now, before, unit, digits) {
  if (now === null || now === undefined) return 'not measured';
  const text = `${now.toFixed(digits)} ${unit}`;
  if (before === null || before === undefined) return text;
  const d = now - before;
  return `${text} (${d >= 0 ? '+' : ''}${d.toFixed(digits)} ${unit} against the version before)`;
}

function showChanges(r) {
  const prev = previousOf(r);
  const items = [];
  const d = r.diff;
  if (d) {
    items.push(`against ${d.from}: ${d.changes.join(', ')}`);
    items.push(`API: ${d.api_changed ? (d.api_breaking ? 'changed, BREAKING' : 'changed, compatible') : 'unchanged'}`);
    d.api_changes.forEach((c) => items.push(`  ${c}`));
    items.push(`outputs: ${d.outputs_changed ? 'changed' : 'unchanged'} (relative difference ` +
               `${d.output_relative_diff === null ? '–' : d.output_relative_diff.toExponential(2)} on probe images)`);
    items.push(`redo: ${d.redo}`);
  } else if (page.manifest.mode === 'versions') {
    items.push('the first version: nothing to compare with');
  } else {
    items.push('members are different models, not versions of one: no version diff');
  }
  const before = page.manifest.mode === 'versions' ? prev : null;
  items.push(`size (fine-tuned SavedModel): ${delta(r.size_mb, before && before.size_mb, 'MB', 2)}`);
  items.push(`latency in the browser test (wasm): ${delta(r.browser_ms_per_image, before && before.browser_ms_per_image, 'ms', 1)}`);
  if (page.latency[r.id] !== undefined) {
    items.push(`latency here: ${delta(page.latency[r.id], before && page.latency[before.id], 'ms', 1)}`);
  }
  $('changes').replaceChildren(...items.map((t) => {
    const li = document.createElement('li');
    li.textContent = t;
    return li;
  }));
  $('diff').textContent = d ? d.summary.join('\n') : '';
}

function showIdentity(r) {
  $('id-member').textContent = r.member;
  $('id-version').textContent = r.number ? `${r.version} (v${r.number})` : r.version;
  $('id-asset').textContent = short(r.asset.sha256);
  $('id-asset').title = r.asset.ref ? `${r.asset.ref}\nsha256 ${r.asset.sha256}` : '';
  const from = r.fine_tuned_from;
  if (from && from.sha256 && r.asset.sha256 && from.sha256 !== r.asset.sha256) {
    $('id-asset').textContent += ` (its classifier was fine-tuned from ${short(from.sha256)}: another build)`;
    $('id-asset').className = 'warn';
  } else {
    $('id-asset').className = '';
  }
  $('id-model').textContent = `${r.model_name || '–'} · ${short(r.model_fingerprint)}`;
  // what the answers rest on: the kind of weights, the accuracy measured on the held-out test images, the latency
  // the browser test measured (Table X), beside the fidelity of the served format (the fidelity sweep)
  $('id-weights').textContent = {imagenet: 'trained (ImageNet)', random: 'random init (guesses)', own: 'your asset\'s own'}[r.weights] || 'not recorded';
  $('id-accuracy').textContent = r.test_accuracy === null || r.test_accuracy === undefined ? 'not measured'
    : `${(100 * r.test_accuracy).toFixed(1)} % on the held-out test images`;
  $('id-latency').textContent = r.browser_ms_per_image === null || r.browser_ms_per_image === undefined ? 'not measured'
    : `${r.browser_ms_per_image.toFixed(1)} ms per image`;
  const [text, cls] = fidelityText(r.fidelity);
  $('id-fidelity').textContent = text;
  $('id-fidelity').className = cls;
  $('id-fidelity').title = (r.fidelity && r.fidelity.detail) || '';
  $('id-choice').textContent = r.id === page.manifest.default ? page.manifest.decision.how : 'you (the decision chose ' +
    page.manifest.default + ')';
  $('note').textContent = r.note;
  $('change').textContent = r.change;
  document.body.dataset.release = r.id;
  showChanges(r);
}

async function loadRelease(id) {
  const r = releaseById(id);
  if (!r) throw new Error(`no release ${id} in the manifest`);
  setState('loading');
  page.release = r;
  showIdentity(r);
  $('predictions').tBodies[0].replaceChildren();
  $('latency').textContent = '–';
  if (!r.servable) {
    $('status').textContent = `not servable: ${r.why_not}`;
    if (page.model) page.model.dispose();
    page.model = null;
    setState('ready');
    return;
  }
  $('status').textContent = `loading ${r.id}…`;
  const model = r.runtime === 'onnx' ? await onnxRelease(r) : await tfjsRelease(r);
  if (page.model) page.model.dispose();
  page.model = model;
  $('status').textContent = page.bitmap ? '' : 'ready: drop a photo';
  setState('ready');
  if (page.bitmap) await predict();
}

// A release's model, warmed up: infer(x) -> {probabilities, ms}; backend: what runs it (shown on the page).
async function tfjsRelease(r) {
  const model = await tf.loadGraphModel(r.model_url);
  tf.tidy(() => model.predict(tf.zeros([1, r.input_size, r.input_size, 3])).dataSync());  // warm-up
  return {
    backend: page.backend,
    async infer(x) {
      const t = performance.now();
      const y = model.predict(x);
      const probabilities = await y.data();  // waits for the backend
      const ms = performance.now() - t;
      y.dispose();
      return {probabilities, ms};
    },
    dispose: () => model.dispose(),
  };
}

// A PyTorch member's ONNX export in ONNX Runtime Web (wasm, whatever TF.js backend preprocesses).
async function onnxRelease(r) {
  const model = await onnxModel(r.model_url);
  const zeros = tf.zeros([1, r.input_size, r.input_size, 3]);
  await model.predict(zeros);  // warm-up
  zeros.dispose();
  return {
    backend: `ONNX Runtime Web ${model.backend}`,
    async infer(x) {
      let t = 0;
      const {values} = await model.predict(x, () => { t = performance.now(); });
      return {probabilities: values, ms: performance.now() - t};
    },
    dispose: () => model.dispose(),
  };
}

// Every action runs after the one before it (a version switch during an inference waits for it).
function queue(action) {
  page.busy = page.busy.then(action).catch((err) => {
    message(String(err && err.message ? err.message : err));
    console.error(err);
    setState(page.model ? 'ready' : 'error');
  });
  return page.busy;
}

async function start() {
  const q = new URLSearchParams(window.location.search);
  page.manifest = await (await fetch('/manifest.json', {cache: 'no-store'})).json();
  page.backend = await pickBackend(q.get('backend') || 'wasm');
  $('backend').value = page.backend;
  $('backend-used').textContent = page.backend;
  const select = $('release');
  for (const r of page.manifest.releases) {
    const option = new Option(optionLabel(r), r.id);
    option.disabled = !r.servable;
    select.add(option);
  }
  const wanted = q.get('release') || page.manifest.default;
  select.value = wanted;
  $('source').textContent = `${page.manifest.releases.length} release(s) of ${page.manifest.source} ` +
    `(${page.manifest.mode}); TF.js ${tf.version.tfjs}` +
    (typeof ort !== 'undefined' && ort.env.versions ? `, ONNX Runtime Web ${ort.env.versions.web}` : '');
  select.addEventListener('change', () => queue(() => loadRelease(select.value)));
  $('backend').addEventListener('change', () => {
    q.set('backend', $('backend').value);
    q.set('release', select.value);
    window.location.search = q.toString();
  });
  $('file').addEventListener('change', () => {
    const file = $('file').files[0];
    $('file').value = '';  // the same photo chosen again is a new upload
    if (file) queue(() => handleFile(file));
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) queue(() => handleFile(file));
  });
  await loadRelease(wanted);
}

window.addEventListener('load', () => queue(start));
