// The RQ1 timing protocol and the TF.js graph-model call, shared by the Node.js runners (rq1_common.mjs,
// run_tfjs_node.mjs) and the headless-Chromium page (rq1_tfjs_page.mjs): no Node.js or DOM imports.

// The i-th image of `data` (images of shape shape[1:]) as its own batch-1 Float32Array.
export function imageAt(data, shape, i) {
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  return data.slice(i * per, (i + 1) * per);
}

// Run every image at batch 1 (outputs, concatenated), then time `repeats` runs of image 0 after `warmup`.
// Returns the flat float32 outputs, their shape and the latencies (ms).
export async function measureRuns({ data, shape, warmup, repeats }, run) {
  const outputs = [];
  let outShape = null;
  for (let i = 0; i < shape[0]; i++) {
    const { values, shape: s } = await run(imageAt(data, shape, i));
    outputs.push(values);
    outShape = s;
  }
  for (let i = 0; i < warmup; i++) await run(imageAt(data, shape, 0));
  const latencies = [];
  for (let i = 0; i < repeats; i++) {
    const first = imageAt(data, shape, 0);
    const t0 = performance.now();
    await run(first);
    latencies.push(performance.now() - t0);
  }
  const flat = new Float32Array(outputs.reduce((n, o) => n + o.length, 0));
  let offset = 0;
  for (const o of outputs) { flat.set(o, offset); offset += o.length; }
  return { outputs: flat, output_shape: [shape[0], ...outShape.slice(1)], latency_ms: latencies };
}

// One batch-1 call of a TF.js graph model: tensor in, execute, read the (first) output back, dispose.
export function graphModelRunner(tf, model, shape) {
  const inputName = model.inputs[0].name;
  return async (values) => {
    const x = tf.tensor(values, [1, ...shape.slice(1)], 'float32');
    const y = model.execute({ [inputName]: x });
    const out = Array.isArray(y) ? y[0] : (y instanceof tf.Tensor ? y : Object.values(y)[0]);
    const data = await out.data();
    const outShape = out.shape;
    tf.dispose([x, y]);
    return { values: data, shape: outShape };
  };
}
