// Shared by the RQ1 Node.js runners (run_tfjs_node.mjs, run_onnx_node.mjs): the file protocol with
// study/deploy.py and the timing loop (rq1_measure.mjs, shared with the Chromium page). Inputs/outputs are
// raw little-endian float32 files; the result is one JSON line on stdout. No network: models and runtimes are read from disk (web/node_modules).
import { readFileSync, writeFileSync } from 'node:fs';

import { parseArgs } from 'node:util';
import { measureRuns } from './rq1_measure.mjs';

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

// The RQ1 timing protocol (rq1_measure.mjs); the outputs go to --output as raw float32.
export async function measure(args, run) {
  const { outputs, ...result } = await measureRuns(args, run);
  writeFileSync(args.output, Buffer.from(outputs.buffer));
  return result;
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
