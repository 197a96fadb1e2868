"""Intermediate tensors of a reference model and of its converted artefact, layer by layer, from each runtime's own
debugging interface; and the rule that matches a converted op to the reference layer it computes.

| format | converted model's layers | reference layers | matched by |
| --- | --- | --- | --- |
| LiteRT (float32, dynamic / full int8) | `Interpreter(experimental_preserve_all_tensors=True)`, reference kernels (no XNNPACK), every op's output, dequantised | the SavedModel's frozen graph in a `tf.compat.v1.Session` | tensor name: its `;`-joined fused TF locations, the latest in the reference's order |
| TF.js graph model | `model.execute(input, nodeNames)` in Node.js (`web/tfjs_intermediates.mjs`, wasm) | the same frozen graph | node name (the converter keeps TF names) |
| ONNX (float) | extra graph outputs (`onnxruntime.quantization.qdq_loss_debug`) | forward hooks on the torch module's leaf modules | the node's `pkg.torch.onnx.name_scopes` = the module path; the last node of a module |
| ONNX int8 (QDQ) | the same, dequantised outputs | the float ONNX model's tensors | `qdq_loss_debug.create_activation_matching` (tensor names) |

A fused converted op (conv + batch norm + ReLU6) is matched to the *last* reference op it computes: after the name
match, the reference chain is followed through elementwise successors (bias add, batch norm, activation) that the
converted model has no op of its own for.
"""
from __future__ import annotations

import ast
import json
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study import config
from study.errors import StudyError

# Ops a converter folds into the op before them (so the converted op's output is the last of the chain).
ELEMENTWISE = {"BiasAdd", "FusedBatchNorm", "FusedBatchNormV3", "Relu", "Relu6", "Elu", "Selu", "LeakyRelu",
               "Identity", "Add", "AddV2", "Mul", "Sub", "Maximum", "Minimum", "Sigmoid", "Tanh"}
SKIPPED_TF_OPS = {"Const", "Placeholder", "NoOp", "Identity", "ReadVariableOp"}


@dataclass
class Layer:
    """One converted op's output, matched to the reference tensor it computes (`ref` is "" when unmatched)."""

    index: int  # the op's position in the converted model
    name: str
    op_type: str
    ref: str
    values: np.ndarray  # (N, ...) float, dequantised
    quantised: bool = False
    qrange: tuple[float, float] | None = None  # representable float range of a quantised tensor


# --- TensorFlow reference: the SavedModel's frozen graph ------------------------------------------------------

class TFGraph:
    """The serving signature of a SavedModel as one frozen graph, run in v1 sessions (own thread pools)."""

    def __init__(self, saved_model: str | Path):
        import tensorflow as tf
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        loaded = tf.saved_model.load(str(saved_model))  # kept alive while freezing: it owns the variables
        frozen = convert_variables_to_constants_v2(loaded.signatures["serving_default"])
        self.graph_def = frozen.graph.as_graph_def()
        self.input = frozen.inputs[0].name
        self.output = frozen.outputs[0].name
        nodes = {n.name: n for n in self.graph_def.node}
        self.op_type = {n.name: n.op for n in self.graph_def.node}
        self.inputs = {n.name: [i.split(":")[0] for i in n.input if not i.startswith("^")] for n in self.graph_def.node}
        self.order = _toposort(self.inputs)
        self.position = {name: i for i, name in enumerate(self.order)}
        self.consumers: dict[str, list[str]] = {}
        for name, ins in self.inputs.items():
            for i in ins:
                self.consumers.setdefault(i, []).append(name)
        self.layers = [n for n in self.order if nodes[n].op not in SKIPPED_TF_OPS and not n.startswith("Func/")]
        out = self.output.split(":")[0]
        while self.op_type.get(out) == "Identity" and self.inputs[out]:  # the signature's output: its producing op
            out = self.inputs[out][0]
        self.output_layer = out
        self.by_key = {}  # a layer's name without the call scopes freezing adds (`StatefulPartitionedCall/`...)
        for name in self.layers:
            self.by_key.setdefault(scope_key(name), name)

    def run(self, x: np.ndarray, names: Sequence[str], *, threads: int = 1, batch: int = 1) -> dict[str, np.ndarray]:
        """`names`' tensors (and the output, key "") on `x` in batches of `batch`, intra-op threads `threads`."""
        import tensorflow as tf

        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(self.graph_def, name="")
        cfg = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1)
        fetch = [graph.get_tensor_by_name(f"{n}:0") for n in names] + [graph.get_tensor_by_name(self.output)]
        parts = []
        with tf.compat.v1.Session(graph=graph, config=cfg) as sess:
            for i in range(0, len(x), batch):
                parts.append(sess.run(fetch, {self.input: x[i:i + batch]}))
        out = {n: np.concatenate([p[j] for p in parts]) for j, n in enumerate(names)}
        out[""] = np.concatenate([p[-1] for p in parts])
        return out

    def sizes(self, x1: np.ndarray) -> dict[str, int]:
        """Per-image element count of every layer (one image through the graph)."""
        out = self.run(x1[:1], self.layers)
        return {name: int(v[0].size) for name, v in out.items() if name}

    def last_of_chain(self, name: str, converted: set[str]) -> str:
        """The reference op a converted op named `name` outputs: follow single-consumer elementwise successors
        that the converted model has no op of its own for (a fused bias add, batch norm or activation)."""
        while True:
            nxt = self.next_ops(name)
            if len(nxt) != 1 or self.op_type[nxt[0]] not in ELEMENTWISE or nxt[0] in converted:
                return name
            name = nxt[0]

    def _through_identities(self, name: str, edges: dict[str, list[str]]) -> list[str]:
        """The ops one `edges` step from `name`, seen through the Identity nodes that nested function calls leave
        at their boundaries after freezing."""
        out, stack, seen = [], list(edges.get(name, [])), set()
        while stack:
            c = stack.pop()
            if c in seen:
                continue
            seen.add(c)
            if self.op_type.get(c) == "Identity" or c.startswith("Func/"):
                stack.extend(edges.get(c, []))
            elif c in self.position:
                out.append(c)
        return out

    def next_ops(self, name: str) -> list[str]:
        """The ops consuming `name`'s output (through Identity nodes)."""
        return self._through_identities(name, self.consumers)

    def match(self, parts: Sequence[str], converted: set[str]) -> str:
        """The reference layer for a converted tensor named by `parts` (TF op names, with or without the
        `StatefulPartitionedCall/` scope and a converter's uniquifying digit): the latest one in reference order."""
        found = []
        for part in parts:
            part = part.strip()
            if part.startswith("StatefulPartitionedCall:") or part == self.output.split(":")[0]:
                found.append(self.output_layer)
                continue
            for cand in (scope_key(part), scope_key(part.rstrip("0123456789"))):
                if cand in self.by_key:
                    found.append(self.by_key[cand])
                    break
        if not found:
            return ""
        return self.last_of_chain(max(found, key=self.position.__getitem__), converted)

    def match_in_order(self, parts: Sequence[str], sources: set[str], size: int | None,
                       sizes: dict[str, int]) -> str:
        """Data-flow fallback for names without scopes (a converter that lost a nested function's locations keeps
        only op names: `Relu6;FusedBatchNormV3;Conv2D18`): a reference op named like the fused chain's root (the
        last part, trailing digits dropped) that reads one of `sources` (the reference layers matched to the
        converted op's inputs), followed along its consumers while their names are among `parts` (the ops the
        converter fused), with the converted tensor's per-image `size`."""
        def names(p: str) -> set[str]:
            p = p.strip().split("/")[-1]
            return {p, p.rstrip("0123456789")}

        root = names(parts[-1])
        wanted = set().union(*(names(p) for p in parts[:-1])) - root  # the ops fused after the root
        for name in self.layers:
            if name.split("/")[-1] not in root or (sources and not set(self.prev_ops(name)) & sources):
                continue
            while True:
                nxt = [c for c in self.next_ops(name) if c.split("/")[-1] in wanted]
                if len(nxt) != 1:
                    break
                name = nxt[0]
            if size is None or sizes.get(name) == size:
                return name
        return ""

    def prev_ops(self, name: str) -> list[str]:
        """The ops (or the input placeholder) whose outputs `name` reads (through Identity nodes)."""
        return self._through_identities(name, self.inputs)


def scope_key(name: str) -> str:
    """A TF op name without the leading `StatefulPartitionedCall/` scopes of nested function calls (a converter
    drops some or all of them)."""
    while name.startswith("StatefulPartitionedCall/"):
        name = name[len("StatefulPartitionedCall/"):]
    return name


def _toposort(inputs: dict[str, list[str]]) -> list[str]:
    order, seen = [], set()
    for root in inputs:
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if node in seen or node not in inputs:
                continue
            seen.add(node)
            stack.append((node, True))
            stack.extend((i, False) for i in reversed(inputs[node]) if i not in seen)
    return order


# --- LiteRT ---------------------------------------------------------------------------------------------------

def _dequantise(values: np.ndarray, detail: dict) -> tuple[np.ndarray, bool, tuple[float, float] | None]:
    q = detail.get("quantization_parameters") or {}
    scales, zeros = np.asarray(q.get("scales", [])), np.asarray(q.get("zero_points", []))
    if not np.issubdtype(values.dtype, np.integer) or scales.size == 0:
        return values.astype(np.float32), False, None
    if scales.size == 1:
        info = np.iinfo(values.dtype)
        lo, hi = (info.min - zeros[0]) * scales[0], (info.max - zeros[0]) * scales[0]
        return ((values.astype(np.float32) - zeros[0]) * scales[0]), True, (float(lo), float(hi))
    shape = [1] * values.ndim
    shape[q.get("quantized_dimension", 0)] = -1
    return (values.astype(np.float32) - zeros.reshape(shape)) * scales.reshape(shape), True, None


def litert_layers(path: str | Path, x: np.ndarray, graph: TFGraph) -> list[Layer]:
    """Every op's output of a .tflite model on `x` (one image at a time), dequantised, matched to `graph`."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(path), num_threads=1, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [1, *x.shape[1:]])
    interp.allocate_tensors()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    ops = [op for op in interp._get_ops_details() if op["op_name"] != "DELEGATE"]  # noqa: SLF001 - the debug API
    per_op: list[list[np.ndarray]] = [[] for _ in ops]
    for i in range(len(x)):
        interp.set_tensor(inp["index"], x[i:i + 1].astype(inp["dtype"]))
        interp.invoke()
        for k, op in enumerate(ops):
            per_op[k].append(interp.get_tensor(int(op["outputs"][0])).copy())
    keys = {scope_key(part.strip()) for d in details.values() for part in d["name"].split(";")}
    keys |= {k.rstrip("0123456789") for k in keys}
    converted = {name for name in graph.layers if scope_key(name) in keys}
    sizes = graph.sizes(x[:1])
    placeholder = graph.input.split(":")[0]
    ref_of: dict[int, str] = {int(inp["index"]): placeholder}  # converted tensor -> its reference layer
    layers = []
    for k, op in enumerate(ops):
        detail = details[int(op["outputs"][0])]
        values, quantised, qrange = _dequantise(np.concatenate(per_op[k]), detail)
        parts = detail["name"].split(";")
        ref = graph.match(parts, converted) if any("/" in p for p in parts) else ""
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):  # the same values as its input, another dtype
            ref = ref or ref_of.get(int(op["inputs"][0]), "")
            ref_of[int(op["outputs"][0])] = ref
            layers.append(Layer(k, detail["name"], op["op_name"], "" if ref == placeholder else ref, values,
                                quantised, qrange))
            continue
        if not ref:
            sources = {ref_of[int(i)] for i in op["inputs"] if int(i) in ref_of and ref_of[int(i)]}
            ref = graph.match_in_order(parts, sources, int(values[0].size), sizes)
        ref_of[int(op["outputs"][0])] = ref
        layers.append(Layer(k, detail["name"], op["op_name"], ref, values, quantised, qrange))
    return layers


# --- TF.js (Node.js) -------------------------------------------------------------------------------------------

def tfjs_layers(model_json: str | Path, x: np.ndarray, graph: TFGraph, *, timeout: float = 300) -> list[Layer]:
    """Every op node's output of a TF.js graph model on `x` via `model.execute(input, nodeNames)` in Node.js."""
    model_json = Path(model_json)
    topology = json.loads(model_json.read_text())["modelTopology"]["node"]
    ins = {n["name"]: [i.split(":")[0].lstrip("^") for i in n.get("input", [])] for n in topology}
    kind = {n["name"]: n["op"] for n in topology}
    nodes = [n for n in _toposort(ins) if kind[n] not in ("Const", "Placeholder")]
    if not (config.WEB / "node_modules").is_dir():
        raise StudyError("web/node_modules is missing; run `make npm` (cd web && npm ci)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.ascontiguousarray(x, dtype="<f4").tofile(tmp / "x.f32")
        (tmp / "nodes.json").write_text(json.dumps(nodes))
        cmd = ["node", str(config.WEB / "tfjs_intermediates.mjs"), "--model", str(model_json), "--input",
               str(tmp / "x.f32"), "--shape", ",".join(map(str, x.shape)), "--nodes", str(tmp / "nodes.json"),
               "--out", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=config.ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"web/tfjs_intermediates.mjs exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
        shapes = json.loads((tmp / "shapes.json").read_text())
        keys = {scope_key(n) for n in nodes}
        converted = {name for name in graph.layers if scope_key(name) in keys}
        layers = []
        for k, name in enumerate(nodes):
            values = np.fromfile(tmp / f"{k}.f32", dtype="<f4").reshape([len(x), *shapes[k][1:]])
            layers.append(Layer(k, name, kind[name], graph.match([name], converted), values))
    return layers


# --- torch reference and ONNX ----------------------------------------------------------------------------------

def torch_leaf_modules(module) -> list[str]:
    return [name for name, m in module.named_modules() if name and not list(m.children())]


def torch_layers(module, x: np.ndarray, names: Sequence[str] | None = None, *, batch: int = 1) -> dict[str, np.ndarray]:
    """Outputs of the leaf modules `names` (default all) of a torch module on `x` (NCHW), via forward hooks;
    the model's output under key ""."""
    import torch

    wanted = set(names if names is not None else torch_leaf_modules(module))
    got: dict[str, list[np.ndarray]] = {n: [] for n in wanted}
    hooks = []
    for name, m in module.named_modules():
        if name in wanted:
            hooks.append(m.register_forward_hook(
                lambda _m, _i, out, name=name: got[name].append(
                    (out[0] if isinstance(out, tuple) else out).detach().numpy().copy())))
    outs = []
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch):
                outs.append(module.eval()(torch.from_numpy(np.ascontiguousarray(x[i:i + batch]))).numpy())
    finally:
        for h in hooks:
            h.remove()
    result = {n: np.concatenate(v) for n, v in got.items() if v}
    result[""] = np.concatenate(outs)
    return result


def _onnx_activations(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every intermediate tensor of an ONNX model on `x` (one image at a time) with onnxruntime's own debugging
    helpers (`qdq_loss_debug`: every node output made a graph output)."""
    from onnxruntime.quantization import qdq_loss_debug as qdq

    feeds = [{"images": np.ascontiguousarray(x[i:i + 1], np.float32)} for i in range(len(x))]
    with tempfile.TemporaryDirectory() as tmp:
        augmented = Path(tmp) / "augmented.onnx"
        qdq.modify_model_output_intermediate_tensors(str(path), str(augmented))
        acts = qdq.collect_activations(str(augmented), feeds)  # each tensor flattened per image
    return {name: np.stack(v) for name, v in acts.items()}


def onnx_nodes(path: str | Path) -> list:
    import onnx

    return list(onnx.load(str(path), load_external_data=False).graph.node)


def onnx_layers(path: str | Path, x: np.ndarray, modules: Sequence[str]) -> list[Layer]:
    """A float ONNX model's node outputs on `x`, matched to the torch leaf module of the node's name scope."""
    acts = _onnx_activations(Path(path), x)
    nodes = onnx_nodes(path)
    scope_of = {}
    for node in nodes:
        meta = {p.key: p.value for p in node.metadata_props}
        try:
            scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
        except (ValueError, SyntaxError):
            scopes = []
        scope_of[node.name] = ".".join(s for s in scopes[1:-1] if s)
    last = {scope_of[n.name]: n.name for n in nodes if scope_of[n.name] in set(modules)}  # a module's last node
    layers = []
    for k, node in enumerate(nodes):
        out = node.output[0] if node.output else ""
        if out not in acts:
            continue
        ref = scope_of[node.name] if last.get(scope_of[node.name]) == node.name else ""
        layers.append(Layer(k, node.name, node.op_type, ref, acts[out].astype(np.float32)))
    return layers


def onnx_qdq_layers(float_path: str | Path, qdq_path: str | Path, x: np.ndarray) -> tuple[list[Layer], dict]:
    """A QDQ model's dequantised tensors matched to the float model's (`qdq_loss_debug.create_activation_matching`);
    returns the layers and the float model's tensors (the reference)."""
    from onnxruntime.quantization import qdq_loss_debug as qdq

    float_acts, qdq_acts = _onnx_activations(Path(float_path), x), _onnx_activations(Path(qdq_path), x)
    matched = qdq.create_activation_matching({k: [v] for k, v in qdq_acts.items()},
                                             {k: [v] for k, v in float_acts.items()})
    layers = []
    for k, node in enumerate(onnx_nodes(float_path)):
        out = node.output[0] if node.output else ""
        pair = matched.get(out)
        if pair is None or not pair.get("post_qdq") or not pair.get("float"):
            continue
        layers.append(Layer(k, node.name, node.op_type, out, np.asarray(pair["post_qdq"][0], np.float32),
                            quantised=True))
    return layers, float_acts

