// TF.js backend set-up in the browser, shared by the simple product (simple_product.js) and the RQ1 page
// (web/rq1_tfjs_page.mjs). The wasm binaries come from the project's npm folder, served at /node_modules/
// by study.browser's static server, never from a CDN. A classic script: defines the global pickBackend.
'use strict';

const WASM_PATH = '/node_modules/@tensorflow/tfjs-backend-wasm/dist/';

// Select TF.js backend `name` (wasm | webgl | cpu); `threads` fixes the wasm thread count when given.
async function pickBackend(name, threads) {
  if (name === 'wasm') {
    tf.wasm.setWasmPaths(WASM_PATH);
    if (threads) tf.wasm.setThreadsCount(threads);
  }
  if (!(await tf.setBackend(name))) throw new Error(`TF.js backend ${name} is not available in this browser`);
  await tf.ready();
  return tf.getBackend();
}
