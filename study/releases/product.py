"""The simple product, released: a page a person uses, serving the chosen member and its published versions.

The case study ends in a product (Section VII-F: the chosen MobileNet as TensorFlow.js in a browser page); the
study builds what its release needs (the decision, per-member fidelity, published versions with their notes and
diffs). This module joins them:

1. **the release manifest** (`build_manifest`): one entry per release a person can switch to, either
   - the versions `publish` wrote (`--versions DIR`: `versions.json`, `v*/version.json`), each served through the
     classifier fine-tuned from it (notebook 08's layout `<DIR>/../finetune/<version>/sweep/models/<id>/`), with
     its note and the `version_diff` summary against the version before; or
   - the members of a fine-tuning sweep (`--members DIR`: `models/<member>/meta.json`, notebooks 04 and 10);

   each with its identity (member, version, asset hash, model fingerprint), the per-member fidelity of its TF.js
   conversion (`<sweep>/deploy_fidelity/rows.jsonl`, `python -m study deploy --sweep`: an unfaithful release is
   marked and never the default) and the decision's choice (`study.decision.choice.select`, `max:accuracy` on
   the releases' Table IX rows unless told) as the default;
2. **the server** (`ProductServer`): Flask on 127.0.0.1 only, serving the page (`web/product/`), TensorFlow.js and
   its wasm backend from the project's npm folder (no CDN), the manifest, and each release's TF.js graph model,
   converted on first use (`study.casestudy.browser.convert`, kept by model fingerprint in the cache): a TF
   member as a TF.js graph model, a PyTorch member as ONNX run by ONNX Runtime Web (wasm) on the same page.

The page does the rest in the browser: a person picks or drops an image, it is checked (type, size, decodable),
preprocessed exactly as `study.runtime.images` does, and inferred; the top classes, their probabilities, the
latency of that inference, the backend and the release's identity are shown.

CLI: `python -m study product [--versions DIR | --members DIR] [--port N]` (prints the URL; Ctrl-C stops it).
"""
from __future__ import annotations

import hashlib
import json
import math
import mimetypes
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from study import config, files
from study.assets import refs as asset_refs, zoo
from study.casestudy import browser, finetune
from study.casestudy.browser import find_models, models_root
from study.decision import choice
from study.deployment import faithful, fidelity
from study.errors import StudyError
from study.releases import publish, version_diff
from study.runtime import environment

PAGE = config.WEB / "product"
TFJS_BACKEND_JS = config.SIMPLE_PRODUCT / "tfjs_backend.js"  # pickBackend, shared with the simple product
ONNX_RUNTIME_JS = config.SIMPLE_PRODUCT / "onnx_runtime.js"  # onnxModel (ONNX Runtime Web), shared with it too
MANIFEST_FORMAT = 1
MAX_IMAGE_BYTES = 20 * 2**20  # larger uploads are refused by the page with a message
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp")  # decoded alike by PIL and Chromium
TOP_K = 5
# The formats whose per-member fidelity says whether the product's TF.js conversion is faithful (first found wins).
FIDELITY_FORMATS = ("tfjs_graph_model_browser", "tfjs_graph_model_node")
# ... per member backend: a torch member is served as ONNX in ONNX Runtime Web (`study.casestudy.onnx_web`)
SERVED_FIDELITY_FORMATS = {"tf": FIDELITY_FORMATS, "torch": ("onnx_web_node", "onnx")}
DEFAULT_PRIORITY = ("max:accuracy",)

mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".js")


@dataclass
class Release:
    """One entry a person can switch to: a published version (through its fine-tuned classifier) or a member."""

    id: str
    member: str
    version: str
    number: int | None = None
    note: str = ""
    change: str = ""
    model: Any = None  # study.casestudy.browser.TunedModel, None when nothing servable
    why_not: str = ""  # why it cannot be served
    sweep: Path | None = None
    diff: dict[str, Any] | None = None
    fidelity: dict[str, Any] = field(default_factory=dict)
    table_ix: dict[str, Any] | None = None  # its Table IX row (accuracy, resources), when its sweep wrote one
    browser_ms: float | None = None  # Table X's ms per image (wasm) when the browser test ran on it
    weights: str = ""  # imagenet | random | own (study.assets.zoo.weights): a random one is never the default
    asset: dict[str, Any] | None = None  # the asset it is (a version: its folder and content hash); else meta.json's

    @property
    def blind(self) -> bool:
        """A random-init release: listed with its kind, never served (its answers would be guesses)."""
        return self.weights == choice.RANDOM_WEIGHTS

    @property
    def servable(self) -> bool:
        return self.model is not None and not self.blind

    @property
    def reason(self) -> str:
        """Why it cannot be served ("" when it can)."""
        if self.model is not None and self.blind:
            return ("randomly initialised (weights: random): its answers would be guesses, so it is listed, never "
                    "served; the product serves members with trained weights")
        return self.why_not

    @property
    def faithful(self) -> bool | None:
        return self.fidelity.get("faithful")

    def to_json(self) -> dict[str, Any]:
        m = self.model
        tuned_from = (m.asset or {}) if m is not None else {}
        asset = self.asset or tuned_from
        return {"id": self.id, "member": self.member, "version": self.version, "number": self.number,
                "note": self.note, "change": self.change, "servable": self.servable, "why_not": self.reason,
                "model_url": f"/models/{self.id}/{m.runtime.file}" if self.servable else None,
                "runtime": m.runtime.name if self.servable else None,  # tfjs | onnx (ONNX Runtime Web, wasm)
                "model_name": m.name if self.servable else None,
                "input_size": m.input_size if self.servable else None,
                "class_names": list(m.class_names) if m is not None else [],
                "asset": {"ref": asset.get("ref"), "sha256": asset.get("sha256")},
                # the asset its classifier's meta.json says it was fine-tuned from (None: not recorded)
                "fine_tuned_from": {"ref": tuned_from.get("ref"), "sha256": tuned_from.get("sha256")} if tuned_from else None,
                "model_fingerprint": m.fingerprint() if self.servable else None,
                "size_mb": _size_mb(m.original.parent if m.backend == "tf" else m.original) if self.servable else None,
                "test_accuracy": _finite(m.test_accuracy) if self.servable else None, "weights": self.weights,
                "browser_ms_per_image": _finite(self.browser_ms),
                "table_ix": self.table_ix, "fidelity": self.fidelity, "diff": self.diff}


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _size_mb(path: Path) -> float:
    """A folder's (the SavedModel's) or a file's (a torch checkpoint's) size on disk."""
    path = Path(path)
    parts = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in parts) / 2**20, 3)


# --- finding what to serve -----------------------------------------------------------------------------------

def _command_hint(profile: config.Profile) -> str:
    return (f"make it with `make reproduce` (or `make reproduce ONLY=\"04 08\"`), or with `python -m study finetune "
            f"--profile {profile.name} --out DIR` and then `python -m study product --members DIR`")


def default_source(profile: config.Profile) -> tuple[str, Path]:
    """What `product` serves without --versions / --members: notebook 04's sweep of the profile (the members the
    decision chooses from), else notebook 08's published versions (newest); one StudyError naming the command that
    makes them when neither exists."""
    sweep = finetune.default_out(profile)
    if (sweep / "models").is_dir():
        return "members", sweep
    published = sorted(config.results_dir().glob("rq3_versions/*/published/versions.json"),
                       key=lambda p: p.stat().st_mtime)
    if published:
        return "versions", published[-1].parent
    raise StudyError(f"no model folder to serve: neither published versions under {config.results_dir() / 'rq3_versions'} "
                     f"nor a fine-tuning sweep in {sweep}; {_command_hint(profile)}")


def _models(sweep: Path) -> list:
    try:
        return [m for m in find_models(sweep)]
    except StudyError:
        return []


def _table_ix_rows(sweep: Path) -> dict[str, dict[str, Any]]:
    import pandas as pd

    path = sweep / "table_ix.csv"
    if not path.is_file():
        return {}
    df = pd.read_csv(path)
    cols = [c for c in ("delta_cpu", "delta_mem", "elapse", "accuracy", "weights") if c in df.columns]
    return {str(r["model"]): {c: (r[c] if isinstance(r[c], str) else _finite(r[c])) for c in cols}
            for _, r in df.iterrows() if "model" in df.columns and r.get("status", "ok") == "ok"}


def _browser_ms(folder: Path, model: str) -> float | None:
    import pandas as pd

    path = folder / "table_x.csv"
    if not path.is_file():
        return None
    df = pd.read_csv(path)
    ok = df[(df["model"] == model) & (df["status"] == "ok") & (df["backend"] == "wasm")]
    return _finite(ok["ms_per_image"].iloc[-1]) if len(ok) else None


def fidelity_of(sweep: Path, model) -> dict[str, Any]:
    """The recorded per-member fidelity of the format `model` is served in (`SERVED_FIDELITY_FORMATS`: its TF.js
    conversion, or a torch member's ONNX export), if it still holds."""
    rows = fidelity.read_rows(fidelity.default_work_dir(sweep) / "rows.jsonl")
    fingerprint = fidelity.model_fingerprint(model)
    formats = SERVED_FIDELITY_FORMATS.get(model.backend, FIDELITY_FORMATS)
    for fmt in formats:
        row = rows.get((model.name, fmt))
        if row is None:
            continue
        if row.get("fingerprint") != fingerprint:
            return {"faithful": None, "format": fmt, "status": "stale",
                    "detail": f"recorded for an earlier version of {model.name}; measure again: "
                              f"python -m study deploy --sweep {sweep} --formats {fmt}"}
        return {"faithful": row.get("status") == "faithful", "format": fmt, "status": row.get("status"),
                "agreement": _finite(row.get("top1_agreement")), "max_abs_diff": _finite(row.get("max_abs_diff")),
                "detail": row.get("error") or ""}
    return {"faithful": None, "format": None, "status": "not measured",
            "detail": f"measure it: python -m study deploy --sweep {sweep} --formats {formats[0] if model.backend == 'torch' else FIDELITY_FORMATS[1]}"}


def _version_diff(a: Path, b: Path) -> dict[str, Any]:
    """`version_diff.diff(a, b)` as the page shows it, kept in the cache by the two versions' records."""
    records = b"".join(files.sha256(p / "version.json").encode() for p in (a, b))
    key = hashlib.sha256(records + faithful.describe().encode()).hexdigest()[:20]  # a changed rule: diff again
    cached = config.cache_dir() / "product" / "diffs" / f"{key}.json"
    if cached.is_file() and files.damage(cached) is None:
        return json.loads(cached.read_text())
    d = version_diff.diff(a, b)
    o = d.outputs
    out = {"from": d.a.version.get("name"), "to": d.b.version.get("name"), "verdict": d.verdict,
           "changes": d.changes, "redo": d.redo, "api_changed": d.api_changed, "api_breaking": d.api_breaking,
           "api_changes": [f"{r.callable} {r.part} {r.name}: {r.a} -> {r.b} [{r.change}]".replace("  ", " ")
                           for r in d.api_changes.itertuples()],
           "variables": d.variable_counts(), "outputs_changed": d.outputs_changed,
           "output_relative_diff": _finite(o.get("relative_diff")), "summary": d.summary().splitlines()}
    files.write_text(cached, json.dumps(out, indent=2, default=str) + "\n")
    return out


def version_releases(published: Path, finetuned: Path | None = None, *, diffs: bool = True,
                     progress: bool = False) -> list[Release]:
    """One Release per version `publish` wrote in `published`, served through the classifier fine-tuned from it
    (`finetuned/<version>/sweep`, default notebook 08's `published/../finetune`)."""
    published = Path(published)
    if not (published / "versions.json").is_file() and not any(published.glob("v*/version.json")):
        raise StudyError(f"no published versions in {published} (expected versions.json and v*/version.json); make "
                         f"them with `python -m study publish --member NAME --out {published}` or `make reproduce`")
    finetuned = Path(finetuned) if finetuned else published.parent / "finetune"
    table = publish.read_published(published)
    releases, previous = [], None
    for v in table.itertuples():
        record = json.loads((Path(v.path) / "version.json").read_text())
        sweep = finetuned / v.name / "sweep"
        found = _models(sweep)
        release = Release(id=v.name, member=record["member"], version=v.name, number=int(v.version), note=v.note,
                          change=v.change, sweep=sweep, weights=record.get("weights") or zoo.built_weights(record["member"]),
                          asset={"ref": str(v.path), "sha256": asset_refs.content_hash(v.path)})
        if found:
            release.model = found[0]
            release.fidelity = fidelity_of(sweep, found[0])
            release.table_ix = _table_ix_rows(sweep).get(found[0].name)
            release.browser_ms = _browser_ms(finetuned / v.name / "browser", found[0].name)
        else:
            release.why_not = (f"no classifier fine-tuned from {v.name} in {sweep}; make it with `make reproduce "
                               f"ONLY=08` or `python -m study finetune --members {v.path} --out {sweep}`")
        if diffs and previous is not None:
            if progress:
                print(f"[product] version-diff {previous.name} -> {v.name}", file=sys.stderr, flush=True)
            release.diff = _version_diff(Path(previous.path), Path(v.path))
        releases.append(release)
        previous = v
    return releases


def member_releases(sweep: Path, browser_out: Path | None = None) -> list[Release]:
    """One Release per fine-tuned member of a sweep's output folder (TF members served as TF.js, torch members as
    ONNX in ONNX Runtime Web); `browser_out`: the browser test of that sweep (its Table X latencies; default
    `sweep/../browser`)."""
    sweep = Path(sweep)
    try:
        models_root(sweep)
    except StudyError:
        raise StudyError(f"no fine-tuned models in {sweep} (expected {sweep}/models/<member>/meta.json); make them "
                         f"with `python -m study finetune --out {sweep}` (or `make reproduce`)") from None
    sweep = sweep if (sweep / "models").is_dir() else sweep.parent
    rows, releases = _table_ix_rows(sweep), []
    for m in find_models(sweep):
        asset = m.asset or {}
        release = Release(id=m.name, member=m.name, version=str(asset.get("ref") or "fine-tuned"),
                          note=f"fine-tuned from {asset.get('ref') or m.name}", sweep=sweep,
                          weights=str((rows.get(m.name) or {}).get("weights") or ""))
        if m.convertible:
            release.model = m
            release.fidelity = fidelity_of(sweep, m)
            release.table_ix = rows.get(m.name)
            release.browser_ms = _browser_ms(browser_out or sweep.parent / "browser", m.name)
        else:
            release.why_not = (f"backend {m.backend!r} has no browser path (TF members are served as TF.js, torch "
                               f"members as ONNX)" if m.runtime is None else f"no {m.original.name} in {m.folder}")
        releases.append(release)
    return releases


# --- the default: the decision's choice -------------------------------------------------------------------------

def choose(releases: list[Release], priority: tuple[str, ...] = DEFAULT_PRIORITY) -> tuple[str, str]:
    """(release id, how it was chosen): `choice.select(priority)` over the servable releases that see (a
    random-init one is never the default: its answers are guesses) and are not known to be unfaithful, on their
    Table IX rows (their meta.json's test accuracy where their sweep wrote none)."""
    import pandas as pd

    seeing = [r for r in releases if r.servable]  # a random-init release is never servable (`Release.blind`)
    if not seeing:
        raise StudyError("nothing to serve: " + "; ".join(f"{r.id}: {r.reason}" for r in releases) +
                         ("; fine-tune a member with trained weights, e.g. `python -m study finetune --members "
                          "efficientnet_lite0_tf`" if any(r.blind for r in releases) else ""))
    candidates = [r for r in seeing if r.faithful is not False]
    if not candidates:
        return seeing[0].id, "every servable release with trained weights is marked not faithful: the first one is shown"
    rows = []
    for r in candidates:
        row = dict(r.table_ix or {})
        row.setdefault("accuracy", _finite(r.model.test_accuracy))
        rows.append({"model": r.id, "delta_cpu": row.get("delta_cpu"), "delta_mem": row.get("delta_mem"),
                     "elapse": row.get("elapse"), "accuracy": row.get("accuracy"), "weights": r.weights})
    ix = pd.DataFrame(rows)
    ix.attrs["source"] = "the releases' Table IX rows"
    try:
        selection = choice.select(choice.CaseStudyTables(ix=ix, label="releases"), priority)
    except StudyError as exc:
        return candidates[0].id, f"the decision could not choose ({exc}): the first release is shown"
    unfaithful = [r.id for r in seeing if r.faithful is False]
    blind = [r.id for r in releases if r.blind]
    return selection.model, (f"the decision's choice ({' > '.join(priority)} over {len(candidates)} release(s)"
                             + (f"; not faithful, left out: {', '.join(unfaithful)}" if unfaithful else "")
                             + (f"; random-init, never chosen: {', '.join(blind)}" if blind else "") + ")")


def build_manifest(*, versions: Path | None = None, members: Path | None = None, finetuned: Path | None = None,
                   profile: config.Profile | None = None, priority: tuple[str, ...] = DEFAULT_PRIORITY,
                   diffs: bool = True, progress: bool = False) -> tuple[dict[str, Any], dict[str, Release]]:
    """The release manifest the page reads, and the releases by id (the server's map to their models); without
    `versions` or `members`, those of `profile` (`default_source`)."""
    if versions and members:
        raise StudyError("give --versions DIR or --members DIR, not both")
    if not versions and not members:
        if profile is None:
            raise StudyError("give --versions DIR, --members DIR or the profile whose results are served")
        mode, folder = default_source(profile)
        versions, members = (folder, None) if mode == "versions" else (None, folder)
    if versions:
        releases, source, mode = version_releases(Path(versions), finetuned, diffs=diffs, progress=progress), \
            Path(versions), "versions"
    else:
        if not Path(members).exists():
            hint = f"; {_command_hint(profile)}" if profile else ""
            raise StudyError(f"model folder {members} does not exist{hint}")
        # the profile's own sweep: notebook 05's browser test of it gives the latencies
        tested = browser.default_out(profile) if profile and Path(members) == finetune.default_out(profile) else None
        releases, source, mode = member_releases(Path(members), tested), Path(members), "members"
    default, how = choose(releases, tuple(priority))
    manifest = {"format": MANIFEST_FORMAT, "mode": mode, "source": str(source), "default": default,
                "decision": {"choice": default, "how": how, "priority": list(priority)},
                "limits": {"max_bytes": MAX_IMAGE_BYTES, "types": list(IMAGE_TYPES), "top_k": TOP_K},
                "releases": [r.to_json() for r in releases]}
    return manifest, {r.id: r for r in releases}


# --- the server -------------------------------------------------------------------------------------------------

class ProductServer:
    """The product page, TF.js from web/node_modules, the manifest and each release's TF.js model, served by Flask
    on 127.0.0.1 (its own thread). `port=0`: the OS picks one. `close()` stops it."""

    def __init__(self, manifest: dict[str, Any], releases: dict[str, Release], *, port: int = 0,
                 page: Path = PAGE, models_dir: Path | None = None):
        from flask import Flask, abort, jsonify, send_file, send_from_directory
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args, **kwargs) -> None:
                pass

        self.manifest, self.releases, self.page = manifest, releases, Path(page)
        if not (self.page / "index.html").is_file():
            raise StudyError(f"no index.html in the product page folder {self.page}; restore web/product/ from git")
        node_modules = environment.node_modules()
        self.models_dir = Path(models_dir) if models_dir else config.cache_dir() / "product" / "tfjs"
        self._lock = threading.Lock()
        app = Flask(f"study-product-{id(self)}")

        @app.after_request
        def no_store(response):
            response.headers["Cache-Control"] = "no-store"
            return response

        @app.get("/")
        def index():
            return send_file(self.page / "index.html")

        @app.get("/product/<path:name>")
        def page_file(name: str):
            return send_from_directory(self.page, name)

        @app.get("/simple_product/tfjs_backend.js")
        def backend_js():
            return send_file(TFJS_BACKEND_JS)

        @app.get("/simple_product/onnx_runtime.js")
        def onnx_runtime_js():
            return send_file(ONNX_RUNTIME_JS)

        @app.get("/node_modules/<path:name>")
        def npm(name: str):
            return send_from_directory(node_modules, name)

        @app.get("/manifest.json")
        def manifest_json():
            return jsonify(self.manifest)

        @app.get("/models/<rid>/<path:name>")
        def model_file(rid: str, name: str):
            release = self.releases.get(rid)
            if release is None or not release.servable:
                abort(404)
            try:
                folder = self.converted(release)
            except StudyError as exc:
                return jsonify(error=str(exc)), 500
            return send_from_directory(folder, name)

        self.app = app
        try:
            self._server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
        except OSError as exc:
            raise StudyError(f"cannot serve on 127.0.0.1:{port} ({exc.strerror or exc}); choose another --port "
                             "(0: any free port)") from None
        # a client that stops reading mid-response (a closed tab) must not hold Ctrl-C: handler threads are
        # daemons and server_close does not join them (socketserver's default would wait for them forever)
        self._server.daemon_threads, self._server.block_on_close = True, False
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="product-server",
                                        daemon=True)
        self._thread.start()

    def converted(self, release: Release) -> Path:
        """The release's converted model folder (TF.js graph model, or a torch member's ONNX export), converted on
        first use and kept by the model's fingerprint."""
        model = release.model
        folder = self.models_dir / f"{model.name}-{model.fingerprint()}"  # model.json + shards, or model.onnx
        with self._lock:
            if browser._converted(folder / model.runtime.file):
                return folder
            conv = browser.convert(model, folder)
            if conv.status != "ok":
                raise StudyError(f"{release.id}: conversion to {conv.format} {conv.status}: {conv.error}")
            return folder

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ProductServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
