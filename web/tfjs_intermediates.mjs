// Intermediate tensors of a TF.js graph model, for localising where a conversion diverges (study.deployment.intermediates).
// node web/tfjs_intermediates.mjs --model DIR/model.json --input x.f32 --shape N,H,W,C --nodes nodes.json --out DIR
// Runs each image at batch 1 on the wasm backend (as run_tfjs_node.mjs does) with model.execute(input, nodeNames);
// writes OUT/<k>.f32 (node k of nodes.json, every image concatenated, raw float32) and OUT/shapes.json.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadGraphModelFromFile, tf, useBackend } from './tfjs_node.mjs';

const { values: args } = parseArgs({
  options: { model: { type: 'string' }, input: { type: 'string' }, shape: { type: 'string' },
    nodes: { type: 'string' }, out: { type: 'string' } },
});
for (const key of ['model', 'input', 'shape', 'nodes', 'out']) {
  if (!args[key]) { process.stderr.write(`error: missing --${key}\n`); process.exit(2); }
}
const shape = args.shape.split(',').map(Number);
const buffer = readFileSync(args.input);
const data = new Float32Array(buffer.buffer, buffer.byteOffset, buffer.byteLength / 4);
const nodes = JSON.parse(readFileSync(args.nodes, 'utf8'));
await useBackend('wasm', 1);
const model = await loadGraphModelFromFile(args.model);
const per = shape.slice(1).reduce((a, b) => a * b, 1);
const chunks = nodes.map(() => []);
const shapes = nodes.map(() => null);
for (let i = 0; i < shape[0]; i += 1) {
  const x = tf.tensor(data.subarray(i * per, (i + 1) * per), [1, ...shape.slice(1)], 'float32');
  let outs = model.execute(x, nodes);
  if (!Array.isArray(outs)) outs = [outs];
  for (let k = 0; k < nodes.length; k += 1) {
    const t = outs[k].dtype === 'float32' ? outs[k] : outs[k].cast('float32');
    chunks[k].push(Buffer.from((await t.data()).buffer.slice(0)));
    shapes[k] = outs[k].shape;
  }
  tf.dispose([x, ...outs]);
}
for (let k = 0; k < nodes.length; k += 1) writeFileSync(join(args.out, `${k}.f32`), Buffer.concat(chunks[k]));
writeFileSync(join(args.out, 'shapes.json'), JSON.stringify(shapes));
