"""Assets named by what they are: the shortlist a team brings to the case study's method (issue 20).

Everywhere a zoo member name is accepted, an *asset reference* is too:

    mobilenet_v2_100_160                                 a zoo member (study.assets.zoo)
    https://tfhub.dev/google/imagenet/.../feature_vector/5, a TF Hub / Kaggle Models handle or URL: a zoo member
    https://www.kaggle.com/models/google/mobilenet-v2/... when it is one, else the real asset (profile paper)
    /path/to/saved_model_folder                          a local TF2 SavedModel with an image feature-vector signature
    package.module:function                              a torch feature extractor: function() -> nn.Module
    REF@SIZE                                             any of the above with its input size stated (px)

Every asset follows TF Hub's image convention: float images (N, S, S, 3) in [0, 1] for TF (NCHW for torch), out
come features (N, D). The input size S and the feature dimension D are read from the asset (the SavedModel's
signature, a torch module's `input_size` attribute and a forward pass). `input_size=` (CLI `--input-size`) is the
S of assets whose input size is variable; an asset with a fixed size keeps its own, so one shortlist can mix both.
`REF@SIZE` states one asset's S: it sets a variable size and must agree with a fixed one. A reference that does
not fit is one StudyError saying what was found and how to fix it.

`resolve(ref, profile)` is THE place a reference becomes an `Asset`; `_resolve_handle` is the one place a handle
is looked up (offline asset folders extend it). Inspecting a SavedModel or a torch function needs TensorFlow /
torch, so it runs in a subprocess (the sweep's driver never imports them; a SavedModel is read in the calling process
when TensorFlow is loaded there already) and its answer is cached keyed by the asset's content hash. The hash
(sha256 of the SavedModel folder, the weights file, or the function's source file) is the asset's identity, recorded
with its reference in every run record, Table IX row and model's meta.json.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study import config, files
from study.assets import zoo
from study.errors import StudyError
from study.runtime import processes

KINDS = ("zoo", "hub", "saved_model", "torch_function")
KAGGLE_FRAMEWORKS = ("tensorflow2", "tensorflow1", "tflite", "tfjs", "keras", "pytorch", "jax")
INSPECT_VERSION = 1  # bump when `_inspect_*` changes: cached inspections are keyed on it
_FUNCTION_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_STATED_SIZE = re.compile(r"^(?P<ref>.+)@(?P<size>\d+)$")
FORMS = ("a zoo member name (python -m study zoo list), a TF Hub / Kaggle handle or URL, a local TF2 SavedModel "
         "folder, or a torch feature extractor 'package.module:function', each optionally followed by @SIZE")


@dataclass(frozen=True)
class Asset:
    """A resolved asset: what the sweep trains, the browser test converts and the decision compares."""

    name: str  # readable id: Table IX's `model` column and the sweep's folder names
    kind: str  # zoo | hub | saved_model | torch_function
    backend: str  # tf | torch
    ref: str  # canonical reference: member name, handle URL, absolute folder, "package.module:function"
    input_size: int
    feature_dim: int | None = None
    sha256: str | None = None  # content hash (None until `fingerprint`)
    member: str | None = None  # the zoo member this is, if any
    signature: str | None = None  # SavedModels without a callable `__call__`: the signature and output to use
    output_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Asset:
        return cls(**d)

    def identity(self) -> dict[str, Any]:
        """What a run record / meta.json keeps of the asset."""
        return {"name": self.name, "kind": self.kind, "ref": self.ref, "sha256": self.sha256,
                "input_size": self.input_size, "feature_dim": self.feature_dim}


# ---------------------------------------------------------------------------------------------- names
def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")
    return s or "asset"


def asset_id(ref: str) -> str:
    """The readable id of a reference, from the string alone (a zoo member keeps its name)."""
    member = zoo_member(ref)
    if member is not None:
        return member.name
    if _FUNCTION_REF.match(ref) and not Path(ref).exists():
        return _slug(ref.replace(":", "."))
    if "://" in ref or not Path(ref).expanduser().exists():
        parts = [p for p in re.sub(r"^[a-z]+://[^/]+/", "", ref).split("/") if p and p != "models"]
        return _slug("_".join(parts[-3:]))
    path = Path(ref).expanduser().resolve()
    return _slug(f"{path.parent.name}_{path.name}" if path.name.isdigit() else path.name)


def _handle_path(ref: str) -> str:
    """`google/imagenet/x/feature_vector/5` from any TF Hub / Kaggle URL or bare handle (no query, no slashes)."""
    return re.sub(r"^[a-z]+://(www\.)?[^/]+/(models/)?", "", ref.split("?")[0]).strip("/").lower()


def weights(ref: str, profile: config.Profile) -> str:
    """What kind of weights the asset `ref` has under `profile`: a zoo member's `imagenet` / `random`
    (`zoo.weights`), `own` for an asset a team gives (its weights are its own; the study does not judge them)."""
    member = zoo_member(ref)
    return zoo.weights(member, profile) if member is not None else "own"


def zoo_member(ref: str):
    """The zoo member a reference names (its name, TF Hub handle/URL or Kaggle handle), else None."""
    if ref in {m.name for m in zoo.MEMBERS}:
        return zoo.get_member(ref)
    h = _handle_path(ref)
    for m in zoo.MEMBERS:
        if m.backend != "tf":
            continue
        if h in (m.handle.lower(), f"{m.handle}/{m.version}".lower()):
            return m
        kaggle = (m.kaggle_handle or "").lower()
        if kaggle and (h == kaggle or (h.startswith(kaggle + "/") and h[len(kaggle) + 1:].isdigit())):
            return m
    return None


# ---------------------------------------------------------------------------------------------- hashes
def content_hash(path: str | Path) -> str:
    """sha256 over a file, or over a folder's relative file names and bytes (sorted)."""
    path = Path(path)
    h = hashlib.sha256()
    entries = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in entries:
        if p.is_dir():
            continue
        h.update(str(p.relative_to(path) if p != path else p.name).encode() + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _function_source(ref: str) -> Path:
    """The source file of `package.module:function`, found without importing it."""
    import importlib.util

    module = ref.split(":")[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        spec, why = None, str(exc)
    else:
        why = "not found"
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise StudyError(f"torch feature extractor {ref!r}: module {module!r} cannot be imported ({why}); install "
                         "its package or put it on PYTHONPATH (form: package.module:function)")
    return Path(spec.origin)


# ---------------------------------------------------------------------------------------------- resolve
def stated_size(ref: str) -> tuple[str, int | None]:
    """`REF@SIZE` -> (REF, SIZE); any other reference (a path that exists as written included) -> (ref, None)."""
    m = _STATED_SIZE.match(ref.strip())
    if m is None or Path(ref.strip()).expanduser().exists():
        return ref.strip(), None
    size = int(m["size"])
    if size < 1:
        raise StudyError(f"{ref}: @SIZE must be a positive number of pixels (e.g. {m['ref']}@224)")
    return m["ref"], size


def resolve(ref: str | Asset, profile: config.Profile, input_size: int | None = None) -> Asset:
    """The asset `ref` names (see the module docstring); one StudyError when it names none or does not fit.

    `input_size` applies to an asset whose input size is variable (a fixed size wins); `REF@SIZE` states this
    asset's size, which a fixed size must equal."""
    if isinstance(ref, Asset):
        return ref
    if not isinstance(ref, str) or not ref.strip():
        raise StudyError(f"empty asset reference {ref!r}; give {FORMS}")
    given = ref.strip()
    ref, stated = stated_size(given)
    asset = _resolve(ref, profile, stated or input_size)
    if stated and asset.input_size != stated:  # only a fixed size can differ from the one asked for
        raise StudyError(f"{given}: {ref} takes {asset.input_size} px images (fixed), not {stated}; "
                         f"write {ref} or {ref}@{asset.input_size}")
    return asset


def _resolve(ref: str, profile: config.Profile, input_size: int | None) -> Asset:
    member = zoo_member(ref)
    if member is not None:  # a fixed input size: `input_size` is for variable-size assets
        return Asset(name=member.name, kind="zoo", backend=member.backend, ref=member.name,
                     input_size=member.input_size, feature_dim=member.feature_dim, member=member.name)
    path = Path(ref).expanduser()
    if _FUNCTION_REF.match(ref) and not path.exists():
        src = _function_source(ref)
        return _inspected("torch_function", ref, content_hash(src), input_size)
    if path.exists():
        path = path.resolve()
        if not (path / "saved_model.pb").is_file():
            raise StudyError(f"{path} is not a TF2 SavedModel folder (no saved_model.pb); give {FORMS}")
        return _inspected("saved_model", str(path), content_hash(path), input_size)
    if "/" in ref:
        return _resolve_handle(ref, profile, input_size)

    raise StudyError(f"unknown asset {ref!r}: not a zoo member, an existing folder or package.module:function. "
                     f"Give {FORMS}; valid members: {', '.join(m.name for m in zoo.MEMBERS)}")


def _resolve_handle(ref: str, profile: config.Profile, input_size: int | None) -> Asset:
    """A TF Hub / Kaggle handle that is not a zoo member: the real asset, fetched into the TF Hub cache (paper)."""
    parts = ref.strip("/").split("/")
    kaggle = len(parts) >= 4 and parts[2].lower() in KAGGLE_FRAMEWORKS  # owner/model/framework/variation[/version]
    url = ref if "://" in ref else f"https://www.kaggle.com/models/{ref.strip('/')}" if kaggle else \
        f"https://tfhub.dev/{ref.strip('/')}"
    if not profile.online:
        raise StudyError(f"{ref} is a TF Hub / Kaggle handle that is not a zoo member; the offline profiles do not "
                         "download. Download it (…?tf-hub-format=compressed), unpack it to a folder and pass the "
                         "folder, or run with PROFILE=paper (online, or with TFHUB_CACHE_DIR holding it)")
    return _inspected("hub", url, None, input_size)


def _inspected(kind: str, ref: str, sha: str | None, input_size: int | None) -> Asset:
    """Inspect (in a subprocess, or here when TensorFlow is loaded here; cached by content hash), build the Asset."""
    key = hashlib.sha256(f"{INSPECT_VERSION}|{kind}|{ref}|{sha}|{input_size or 0}".encode()).hexdigest()[:32]
    cache = config.cache_dir() / "asset-refs" / f"{key}.json"
    info = None
    if sha and cache.is_file():
        try:
            info = json.loads(cache.read_text())
        except (OSError, json.JSONDecodeError):
            info = None
    if info is None and kind != "torch_function" and "tensorflow" in sys.modules:
        # TensorFlow is loaded here already (a notebook kernel, a test): read the SavedModel in this process instead
        # of paying a second TensorFlow start-up. A torch function is user code: always imported in a subprocess.
        try:
            info = _inspect(kind, ref, input_size or 0)
        except StudyError:
            raise
        except Exception as exc:  # noqa: BLE001 - what the subprocess would report, as one error
            raise StudyError(f"inspecting {ref} failed: {type(exc).__name__}: {exc}") from exc
    if info is None:
        cmd = [sys.executable, "-m", "study.assets.refs", kind, ref, str(input_size or 0)]
        proc = processes.run(cmd, role="asset-inspect", capture_output=True, text=True, env=processes.child_env())
        if proc.returncode:
            lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith(("WARNING", "I0000", "W0000"))]
            raise StudyError("\n".join(lines[-6:]) or f"inspecting {ref} failed (exit {proc.returncode})")
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        if sha:
            files.write_text(cache, json.dumps(info) + "\n")
    return Asset(name=asset_id(ref), kind=kind, backend="torch" if kind == "torch_function" else "tf", ref=ref,
                 sha256=info.get("sha256", sha), **{k: info.get(k) for k in
                                                    ("input_size", "feature_dim", "signature", "output_key")})


def resolve_all(refs: Sequence[str | Asset], profile: config.Profile, input_size: int | None = None) -> list[Asset]:
    """Several references; two different assets with the same readable id are an error (their folders would clash)."""
    out: list[Asset] = []
    for ref in refs:
        a = resolve(ref, profile, input_size)
        clash = next((b for b in out if b.name == a.name), None)
        if clash is not None and clash.ref != a.ref:
            raise StudyError(f"assets {clash.ref} and {a.ref} would both be called {a.name!r}; rename one folder")
        if clash is None:
            out.append(a)
    return out


def fingerprint(asset: Asset, profile: config.Profile) -> Asset:
    """The asset with its content hash (zoo members: of the built / cached / shipped files)."""
    if asset.sha256 or asset.kind != "zoo":
        return asset

    member = zoo.get_member(asset.member)
    if member.backend == "torch":
        where = zoo._lite_weights_path(member)
    elif profile.online and not zoo.ported(member):
        where = Path(zoo.paper_asset(member))
        where = where if where.exists() else zoo.hub_cache_path(member)
    else:
        where = zoo.embedded_path(member)
    return dataclasses.replace(asset, sha256=content_hash(where) if where.exists() else None)


def saved_model_folder(ref: str, profile: config.Profile) -> Path | None:
    """The SavedModel folder of a TF zoo member named by `ref` (embedded: built; paper: local copy or TF Hub
    cache, fetched when online), for tools that read folders (version-diff); None when `ref` names no TF member."""
    member = zoo_member(ref)
    if member is None or member.backend != "tf":
        return None

    location = zoo.asset_location(member, profile)
    if Path(location).exists():
        return Path(location)
    import tensorflow_hub as hub

    return Path(hub.resolve(location))


# ---------------------------------------------------------------------------------------------- loading
def _import_function(ref: str):
    import importlib

    module, fn = ref.split(":")
    try:
        return getattr(importlib.import_module(module), fn)
    except (ImportError, AttributeError) as exc:
        raise StudyError(f"torch feature extractor {ref!r}: {type(exc).__name__}: {exc}") from exc


def _torch_module(ref: str):
    from torch import nn

    fn = _import_function(ref)
    try:
        module = fn()
    except Exception as exc:  # noqa: BLE001 - the user's code: say which function failed and how
        raise StudyError(f"{ref}() failed: {type(exc).__name__}: {exc}; a torch feature extractor is a function "
                         "called without arguments") from exc
    if not isinstance(module, nn.Module):
        raise StudyError(f"{ref}() returned a {type(module).__name__}, not a torch.nn.Module; a torch feature "
                         "extractor is a function returning a module that maps (N, 3, S, S) in [0, 1] to (N, D)")
    return module


def _hub_location(asset: Asset) -> str:
    return asset.ref


def feature_extractor(asset: Asset, profile: config.Profile, trainable: bool = False):
    """The asset as a feature extractor, like `study.assets.zoo.feature_extractor` for zoo members."""
    if asset.kind == "zoo":
        return zoo.feature_extractor(asset.member, profile, trainable)
    if asset.kind == "torch_function":
        module = _torch_module(asset.ref)
        module.requires_grad_(trainable)
        return module.eval()
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow_hub as hub

    extra = {"signature": asset.signature, "output_key": asset.output_key} if asset.signature else {}
    try:
        return hub.KerasLayer(_hub_location(asset), trainable=trainable, name=asset.name,
                              input_shape=(asset.input_size, asset.input_size, 3), **extra)
    except Exception as exc:  # noqa: BLE001 - hub raises many types; say which asset and how to fix
        raise StudyError(f"cannot load {asset.name} from {asset.ref}: {type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------------------------------------- inspection
def _size_from(shape: Sequence[int | None], input_size: int, where: str) -> int:
    h, w = shape[1], shape[2]
    if h is not None and w is not None and h != w:
        raise StudyError(f"{where} takes {h}x{w} images; the method uses square inputs")
    fixed = h or w  # a fixed size wins over `input_size`, which is for variable-size assets (`resolve` checks @SIZE)
    if not (fixed or input_size):
        raise StudyError(f"{where} takes images of any size; state one with --input-size N or REF@N (e.g. 224)")
    return int(fixed or input_size)


def _inspect_saved_model(path: str, input_size: int) -> dict[str, Any]:
    """Input size, feature dim and how to call a SavedModel image feature vector (`__call__` or a signature)."""
    import tensorflow as tf

    try:
        obj = tf.saved_model.load(path)
    except Exception as exc:  # noqa: BLE001
        raise StudyError(f"cannot load the SavedModel {path}: {type(exc).__name__}: {exc}") from exc

    def image(spec) -> bool:
        return isinstance(spec, tf.TensorSpec) and spec.shape.rank == 4 and spec.shape[-1] == 3 and spec.dtype.is_floating

    seen = []
    for cf in getattr(getattr(obj, "__call__", None), "concrete_functions", []):
        args = cf.structured_input_signature[0]
        out = cf.structured_outputs
        if args and image(args[0]) and isinstance(out, (tf.Tensor, tf.TensorSpec)) and out.shape.rank == 2:
            size = _size_from(args[0].shape.as_list(), input_size, f"the SavedModel {path}")
            return {"input_size": size, "feature_dim": out.shape[-1], "signature": None, "output_key": None}
        seen.append(f"__call__{tuple(getattr(a, 'shape', a) for a in args)}")
    for name, fn in obj.signatures.items():
        inputs = fn.structured_input_signature[1]
        outputs = {k: v for k, v in fn.structured_outputs.items() if v.shape.rank == 2}
        images = [k for k, v in inputs.items() if image(v)]
        seen.append(f"{name}({', '.join(f'{k}: {v.shape}' for k, v in inputs.items())})")
        if len(inputs) == 1 and images and outputs:
            key = next((k for k in ("feature_vector", "default", "features") if k in outputs), sorted(outputs)[0])
            size = _size_from(inputs[images[0]].shape.as_list(), input_size, f"the SavedModel {path}")
            return {"input_size": size, "feature_dim": outputs[key].shape[-1], "signature": name, "output_key": key}
    raise StudyError(f"the SavedModel {path} has no image feature-vector signature: expected a function of float "
                     f"images (N, S, S, 3) returning features (N, D); found {'; '.join(seen) or 'no functions'}. "
                     "Export an image feature vector (TF Hub's image_feature_vector convention)")


def _inspect_torch(ref: str, input_size: int) -> dict[str, Any]:
    import torch

    module = _torch_module(ref).eval()
    fixed = getattr(module, "input_size", None) or getattr(_import_function(ref), "input_size", None)
    size = _size_from([None, fixed, fixed], input_size, f"the torch feature extractor {ref}")
    try:
        with torch.no_grad():
            out = module(torch.zeros(1, 3, size, size))
    except Exception as exc:  # noqa: BLE001
        raise StudyError(f"{ref}: a (1, 3, {size}, {size}) image batch fails: {type(exc).__name__}: {exc}") from exc
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise StudyError(f"{ref} returns {getattr(out, 'shape', type(out).__name__)} for (1, 3, {size}, {size}); "
                         "a feature extractor returns (N, D) features")
    return {"input_size": size, "feature_dim": int(out.shape[1]), "signature": None, "output_key": None}


def _inspect(kind: str, ref: str, input_size: int) -> dict[str, Any]:
    if kind == "torch_function":
        return _inspect_torch(ref, input_size)
    if kind == "hub":
        import tensorflow_hub as hub

        try:
            path = hub.resolve(ref)
        except Exception as exc:  # noqa: BLE001
            raise StudyError(f"cannot fetch {ref}: {type(exc).__name__}: {exc}; check the handle, the network or "
                             "TFHUB_CACHE_DIR") from exc
        return _inspect_saved_model(path, input_size) | {"sha256": content_hash(path)}
    return _inspect_saved_model(ref, input_size)


if __name__ == "__main__":  # python -m study.assets.refs KIND REF INPUT_SIZE (run by `resolve`)
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        print(json.dumps(_inspect(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
    except StudyError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
