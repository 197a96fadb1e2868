// ONNX Runtime Web in the browser, shared by the simple product (simple_product.js, runtime=onnx) and the released
// product (web/product/product.js): a PyTorch member's ONNX export (study.casestudy.onnx_web: float (N, 3, S, S) in
// [0, 1] -> probabilities) run on the wasm execution provider. The wasm binaries come from the project's npm folder,
// served at /node_modules/, never from a CDN. A classic script: defines the global onnxModel.
'use strict';

const ORT_WASM_PATH = '/node_modules/onnxruntime-web/dist/';

// Load the ONNX model at `url` (wasm, `threads` threads: 1 unless told, as the TF.js wasm backend runs here).
// Returns {backend, version, predict(x), dispose()}: predict takes a TF.js tensor (1, S, S, 3), the study's
// preprocessing, and resolves to the probabilities (Float32Array); its layout change to NCHW happens before
// `onStart`, so a caller timing from there times ONNX Runtime Web alone.
async function onnxModel(url, threads = 1) {
  if (typeof ort === 'undefined') throw new Error('ONNX Runtime Web (ort.wasm.min.js) is not loaded on this page');
  ort.env.wasm.wasmPaths = ORT_WASM_PATH;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  const session = await ort.InferenceSession.create(url, {executionProviders: ['wasm']});
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  return {
    backend: 'wasm',
    version: (ort.env.versions && ort.env.versions.web) || null,
    async predict(x, onStart = () => {}) {
      const nchw = x.transpose([0, 3, 1, 2]);
      const values = await nchw.data();
      const shape = nchw.shape;
      nchw.dispose();
      onStart();
      const feeds = {[input]: new ort.Tensor('float32', values, shape)};
      const results = await session.run(feeds);
      return {values: results[output].data, shape: results[output].dims};
    },
    dispose() {
      session.release();
    },
  };
}
