// Shared by the RQ1 Node.js runners (run_tfjs_node.mjs, run_onnx_node.mjs): the file protocol with
// study/deploy.py and the timing loop. Inputs/outputs are raw little-endian float32 files; the result is
// one JSON line on stdout. No network: models and runtimes are read from disk (web/node_modules).
import { readFileSync, writeFileSync } from 'node:fs';

import { parseArgs } from 'node:util';

export function cliArgs() {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' }, input: { type: 'string' }, shape: { type: 'string' },
      output: { type: 'string' }, warmup: { type: 'string', default: '3' },
      repeats: { type: 'string', default: '20' }, threads: { type: 'string', default: '1' },
    },
  });
  for (const key of ['model', 'input', 'shape', 'output']) {
    if (!values[key]) fail(`missing --${key}; usage: --model FILE --input FILE.f32 --shape N,H,W,C --output FILE.f32`);
  }
  const shape = values.shape.split(',').map(Number);
  if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d <= 0)) fail(`--shape ${values.shape} is not N,d1,d2,d3`);
  const buffer = readFileSync(values.input);
  const data = new Float32Array(buffer.buffer, buffer.byteOffset, buffer.byteLength / 4);
  const expected = shape.reduce((a, b) => a * b, 1);
  if (data.length !== expected) fail(`--input has ${data.length} floats, --shape ${values.shape} needs ${expected}`);
  return { ...values, shape, data, warmup: Number(values.warmup), repeats: Number(values.repeats), threads: Number(values.threads) };
}

export function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

// The i-th image of a batch as its own batch-1 Float32Array.
export function image(args, i) {
  const per = args.shape.slice(1).reduce((a, b) => a * b, 1);
  return args.data.slice(i * per, (i + 1) * per);
}

// Run every image at batch 1 (outputs, concatenated), then time `repeats` runs of image 0 after `warmup`.
export async function measure(args, run) {
  const outputs = [];
  let outShape = null;
  for (let i = 0; i < args.shape[0]; i++) {
    const { values, shape } = await run(image(args, i));
    outputs.push(values);
    outShape = shape;
  }
  for (let i = 0; i < args.warmup; i++) await run(image(args, 0));
  const latencies = [];
  for (let i = 0; i < args.repeats; i++) {
    const first = image(args, 0);
    const t0 = performance.now();
    await run(first);
    latencies.push(performance.now() - t0);
  }
  const total = outputs.reduce((n, o) => n + o.length, 0);
  const flat = new Float32Array(total);
  let offset = 0;
  for (const o of outputs) { flat.set(o, offset); offset += o.length; }
  writeFileSync(args.output, Buffer.from(flat.buffer));
  return { latency_ms: latencies, output_shape: [args.shape[0], ...outShape.slice(1)] };
}

export function report(result) {
  process.stdout.write(`${JSON.stringify({ ...result, max_rss_mb: peakRssMb() })}\n`);
}

// Peak resident set (MiB): VmHWM of /proc/self/status. Not resourceUsage().maxRSS, which Linux carries
// over from the parent process across fork + exec.
function peakRssMb() {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
    if (line) return Number(line.split(/\s+/)[1]) / 1024;
  } catch { /* not Linux */ }
  return process.resourceUsage().maxRSS / 1024;
}
