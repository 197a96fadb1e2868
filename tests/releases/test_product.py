"""The simple product, released (study.releases.product): the release manifest, the CLI, and the page in real
headless Chromium driven through the DevTools protocol like a person (file input, version switch), its answers
checked against TensorFlow in Python on the same image and version."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest

from study import config
from study.cli import main
from study.config import PROFILES
from study.errors import StudyError
from study.releases import product
from tests.conftest import needs_browser

MEMBER = "efficientnet_lite0_tf"  # the smallest TF member that sees: the product serves nothing random
ARTIFACTS = Path(os.environ.get("STUDY_TEST_ARTIFACTS", "")) if os.environ.get("STUDY_TEST_ARTIFACTS") else None


# --- a sweep folder as the fine-tuning sweep leaves it (meta.json, SavedModel files, Table IX) ------------------

def _fake_member(sweep: Path, name: str, accuracy: float, *, backend: str = "tf") -> None:
    """A member folder with the files the manifest reads (no TensorFlow needed to build the manifest)."""
    folder = sweep / "models" / name
    (folder / "saved_model" / "variables").mkdir(parents=True)
    (folder / "saved_model" / "saved_model.pb").write_bytes(name.encode())
    (folder / "saved_model" / "variables" / "variables.index").write_bytes(b"index " + name.encode())
    (folder / "meta.json").write_text(json.dumps({
        "member": name, "backend": backend, "input_size": 32, "class_names": ["daisy", "rose"],
        "test_accuracy": accuracy, "asset": {"ref": f"hub/{name}/1", "sha256": "ab" * 32},
        "test_images": [{"path": "/nonexistent/a.jpg", "label": 0}]}))


def _fidelity_row(sweep: Path, model_name: str, status: str, *, fingerprint: str | None = None,
                  fmt: str = "tfjs_graph_model_node") -> None:
    """One recorded row of `deploy --sweep`'s log, as study.deployment.fidelity writes it."""
    from study.casestudy import browser
    from study.deployment import fidelity

    model = next(m for m in browser.find_models(sweep) if m.name == model_name)
    log = fidelity.default_work_dir(sweep) / "rows.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write(json.dumps({"member": model_name, "format": fmt, "status": status, "faithful": status == "faithful",
                             "top1_agreement": 1.0 if status == "faithful" else 0.75, "max_abs_diff": 0.2,
                             "error": "", "fingerprint": fingerprint or fidelity.model_fingerprint(model),
                             "key": "k"}) + "\n")


def test_manifest_of_a_sweep_defaults_to_the_decision_and_marks_unfaithful_members(tmp_path):
    sweep = tmp_path / "sweep"
    for name, acc in (("m_low", 0.5), ("m_high", 0.9), ("m_mid", 0.7)):
        _fake_member(sweep, name, acc)
    _fake_member(sweep, "torch_member", 0.95, backend="torch")
    manifest, releases = product.build_manifest(members=sweep)
    assert manifest["mode"] == "members" and [r["id"] for r in manifest["releases"]] == \
        ["m_high", "m_low", "m_mid", "torch_member"]
    # the decision's max:accuracy among the servable releases (the torch member lacks its model.pt here)
    assert manifest["default"] == "m_high" and "decision" in manifest["decision"]["how"]
    torch = next(r for r in manifest["releases"] if r["id"] == "torch_member")
    assert not torch["servable"] and "no model.pt" in torch["why_not"] and torch["model_url"] is None
    high = next(r for r in manifest["releases"] if r["id"] == "m_high")
    assert high["model_url"] == "/models/m_high/model.json" and high["asset"]["sha256"] == "ab" * 32
    assert high["runtime"] == "tfjs"
    assert high["class_names"] == ["daisy", "rose"] and high["fidelity"]["status"] == "not measured"
    assert len(high["model_fingerprint"]) == 16 and high["size_mb"] >= 0
    json.dumps(manifest)  # what the page reads is plain JSON

    # per-member fidelity: an unfaithful conversion is marked and never the default; a stale row is not trusted
    _fidelity_row(sweep, "m_high", "wrong_output")
    _fidelity_row(sweep, "m_mid", "faithful")
    _fidelity_row(sweep, "m_low", "faithful", fingerprint="0" * 16)
    manifest, _ = product.build_manifest(members=sweep)
    by = {r["id"]: r for r in manifest["releases"]}
    assert by["m_high"]["fidelity"]["faithful"] is False and by["m_high"]["fidelity"]["status"] == "wrong_output"
    assert by["m_mid"]["fidelity"]["faithful"] is True and by["m_mid"]["fidelity"]["agreement"] == 1.0
    assert by["m_low"]["fidelity"]["status"] == "stale" and by["m_low"]["fidelity"]["faithful"] is None
    assert manifest["default"] == "m_mid" and "m_high" in manifest["decision"]["how"]

    # the sweep's Table IX (when it wrote one) is what the decision reads; a priority order can be given
    (sweep / "table_ix.csv").write_text("model,delta_cpu,delta_mem,elapse,accuracy,status\n"
                                        "m_low,10,5,00:00:20,0.99,ok\nm_mid,30,9,00:00:50,0.6,ok\n")
    assert product.build_manifest(members=sweep)[0]["default"] == "m_low"
    assert product.build_manifest(members=sweep, priority=("min:ix.delta_cpu",))[0]["default"] == "m_low"


def test_a_random_init_member_is_listed_never_served_nor_the_default(tmp_path):
    sweep = tmp_path / "sweep"
    for name, acc in (("blind_best", 0.99), ("sees", 0.9)):
        _fake_member(sweep, name, acc)
    (sweep / "table_ix.csv").write_text("model,delta_cpu,delta_mem,elapse,accuracy,status,weights\n"
                                        "blind_best,1,1,00:00:10,0.99,ok,random\nsees,9,9,00:00:50,0.9,ok,imagenet\n")
    manifest, releases = product.build_manifest(members=sweep)
    by = {r["id"]: r for r in manifest["releases"]}
    assert manifest["default"] == "sees" and "random-init, never chosen: blind_best" in manifest["decision"]["how"]
    assert not by["blind_best"]["servable"] and by["blind_best"]["model_url"] is None
    assert "randomly initialised" in by["blind_best"]["why_not"] and by["blind_best"]["weights"] == "random"
    assert by["sees"]["servable"] and by["sees"]["weights"] == "imagenet" and by["sees"]["test_accuracy"] == 0.9
    (sweep / "table_ix.csv").write_text("model,delta_cpu,delta_mem,elapse,accuracy,status,weights\n"
                                        "blind_best,1,1,00:00:10,0.99,ok,random\nsees,9,9,00:00:50,0.9,ok,random\n")
    with pytest.raises(StudyError, match=r"nothing to serve: .*randomly initialised.*efficientnet_lite0_tf"):
        product.build_manifest(members=sweep)


def test_a_missing_model_folder_is_one_clear_error_naming_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STUDY_RESULTS_DIR", str(tmp_path / "results"))
    assert main(["product", "--members", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "python -m study finetune" in err[0]
    assert main(["product", "--versions", str(tmp_path)]) == 2
    assert "python -m study publish --member NAME" in capsys.readouterr().err
    assert main(["product", "--profile", "smoke"]) == 2  # nothing under results/: the default has nothing either
    assert "make reproduce" in capsys.readouterr().err
    with pytest.raises(StudyError, match="not both"):
        product.build_manifest(members=tmp_path, versions=tmp_path)


@needs_browser
def test_the_command_serves_loopback_only_prints_the_url_and_stops_on_ctrl_c(tmp_path):
    sweep = tmp_path / "sweep"
    _fake_member(sweep, "m_one", 0.8)
    # started the way a shell starts a background job: SIGINT ignored (inherited SIG_IGN); Ctrl-C must still stop it
    proc = subprocess.Popen([sys.executable, "-m", "study", "product", "--members", str(sweep), "--port", "0"],
                            cwd=config.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/"), (url, proc.stderr.read()[-2000:])
        port = int(url.rsplit(":", 1)[1].strip("/"))
        listening = [c for c in psutil.Process(proc.pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN]
        assert [c.laddr.ip for c in listening] == ["127.0.0.1"] and listening[0].laddr.port == port
        manifest = json.loads(urllib.request.urlopen(url + "manifest.json", timeout=10).read())
        assert manifest["default"] == "m_one"
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert "/node_modules/@tensorflow/tfjs/dist/tf.min.js" in page and "https://" not in page  # no CDN
        # the two responses are left unread: a client that stops reading must not keep Ctrl-C from stopping it
        tfjs = urllib.request.urlopen(url + "node_modules/@tensorflow/tfjs/dist/tf.min.js", timeout=10)
        assert tfjs.status == 200 and "javascript" in tfjs.headers["Content-Type"]
        wasm = urllib.request.urlopen(url + "node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm",
                                      timeout=10)
        assert wasm.headers["Content-Type"] == "application/wasm"
        with pytest.raises(urllib.error.HTTPError) as refused:  # nothing outside the served folders
            urllib.request.urlopen(url + "node_modules/../../study/config.py", timeout=10)  # a file that exists
        assert refused.value.code == 404  # not found there, rather than a server error
        assert not psutil.Process(proc.pid).children(recursive=True)  # it serves in-process: no child to leave
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=30) == 0
        assert "[product] stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- the page in Chromium ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def released(tmp_path_factory, shared_zoo):
    """Two published versions of MEMBER (real `publish`) and, as each version's fine-tuned classifier in notebook
    08's layout (`finetune/<version>/sweep/models/<id>/`), one of two small real classifiers of different input
    sizes (`stand_ins.tiny_classifiers`: seconds instead of two fine-tuning runs)."""
    from study.casestudy import stand_ins
    from study.releases import publish

    root = tmp_path_factory.mktemp("product")
    mp = pytest.MonkeyPatch()
    mp.setenv("STUDY_CACHE_DIR", str(root / "cache"))
    mp.setenv("STUDY_ZOO_DIR", str(shared_zoo))  # the member built once a run
    stand_ins.tiny_classifiers(root / "tiny", profile=PROFILES["smoke"])
    publish.publish(MEMBER, root / "published", ["v1", "v2"], progress=False)
    for version, model in (("v1_initial", "tiny_mobilenet_32"), ("v2_variable_input", "tiny_mobilenet_48")):
        shutil.copytree(root / "tiny" / "models" / model, root / "finetune" / version / "sweep" / "models" / model)
    yield root
    mp.undo()


def _python_probabilities(model, image: Path) -> np.ndarray:
    import tensorflow as tf

    from study.runtime.images import load_image

    fn = tf.saved_model.load(str(model.saved_model)).signatures["serving_default"]
    return next(iter(fn(tf.constant(load_image(image, model.input_size)[None])).values())).numpy()[0]


SHOWN = """JSON.stringify({
  state: document.body.dataset.state, seq: document.body.dataset.seq || '0', release: document.body.dataset.release,
  answered: (document.getElementById('answer').dataset.release || ''),
  rows: [...document.querySelectorAll('#predictions tbody tr')].map((tr) => ({
    index: +tr.dataset.index, probability: +tr.dataset.probability, name: tr.cells[0].textContent})),
  latency: +(document.getElementById('latency').dataset.ms || 0),
  backend: document.getElementById('backend-used').textContent,
  member: document.getElementById('id-member').textContent, version: document.getElementById('id-version').textContent,
  asset: document.getElementById('id-asset').textContent, model: document.getElementById('id-model').textContent,
  fidelity: document.getElementById('id-fidelity').textContent, note: document.getElementById('note').textContent,
  changes: document.getElementById('changes').textContent, message: document.getElementById('message').textContent,
  options: [...document.getElementById('release').options].map((o) => o.textContent)})"""


def _shown(browser) -> dict:
    return json.loads(browser.evaluate(SHOWN))


def _upload(browser, path: Path) -> dict:
    """Set `path` on the page's file input (DevTools DOM.setFileInputFiles) and wait until the page handled it."""
    seq = int(_shown(browser)["seq"])
    browser.set_files("#file", [path])
    browser.wait_for(f"+(document.body.dataset.seq || 0) > {seq} && document.body.dataset.state !== 'predicting'",
                     timeout=120)
    return _shown(browser)


def _assert_answer_is_pythons(shown: dict, release, image: Path) -> None:
    """The page's top classes and probabilities are TensorFlow-in-Python's on the same image and version."""
    reference = _python_probabilities(release.model, image)
    top = [r["index"] for r in shown["rows"]]
    assert len(top) == min(product.TOP_K, len(reference))
    assert top[0] == int(np.argmax(reference)), (shown["rows"], reference)
    page_p = np.array([r["probability"] for r in shown["rows"]])
    # the same function on the same pixels: float32 rounding of two runtimes (and two JPEG decoders) apart
    np.testing.assert_allclose(page_p, reference[top], atol=2e-3)
    assert sorted(reference)[::-1][:len(top)] == pytest.approx(list(page_p), abs=2e-3)  # the largest ones, in order
    assert shown["rows"][0]["name"] == release.model.class_names[top[0]]
    assert shown["latency"] > 0 and shown["backend"] == "wasm"


@pytest.mark.slow
@needs_browser
def test_the_page_answers_like_tensorflow_switches_versions_and_survives_bad_uploads(released, tmp_path):
    from study.runtime.devtools import DevToolsBrowser

    # v1's TF.js conversion recorded as not faithful: marked on the page, and the decision's default is v2
    v1_sweep = released / "finetune" / "v1_initial" / "sweep"
    _fidelity_row(v1_sweep, "tiny_mobilenet_32", "wrong_output", fmt="tfjs_graph_model_browser")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDY_CACHE_DIR", str(released / "cache"))
        manifest, releases = product.build_manifest(versions=released / "published")
        server = product.ProductServer(manifest, releases, models_dir=tmp_path / "tfjs")
    assert [r["id"] for r in manifest["releases"]] == ["v1_initial", "v2_variable_input"]
    assert manifest["default"] == "v2_variable_input"
    assert manifest["releases"][1]["diff"]["from"] == "v1_initial" and manifest["releases"][1]["diff"]["api_changed"]
    v1, v2 = releases["v1_initial"], releases["v2_variable_input"]
    images = [p for p, _ in v2.model.images][:3]  # the classifiers' own evaluation images
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(images[0].read_bytes()[:200])  # a JPEG cut short: right magic, cannot be decoded
    text = tmp_path / "notes.txt"
    text.write_text("not a photo\n")
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.truncate(product.MAX_IMAGE_BYTES + 1)  # sparse: the size a person's upload would have

    shots = ARTIFACTS or tmp_path
    browser = DevToolsBrowser(tmp_path / "chromium.log", width=1100, height=820)
    try:
        browser.navigate(server.url)
        browser.wait_for("document.body.dataset.state === 'ready'", timeout=120)
        shown = _shown(browser)
        assert shown["release"] == "v2_variable_input"  # the decision's choice is what a person gets first
        assert any("decision's choice" in o for o in shown["options"] if o.startswith("v2_variable_input"))
        assert any("not faithful" in o for o in shown["options"] if o.startswith("v1_initial"))
        assert shown["member"] == MEMBER and "v2_variable_input" in shown["version"]
        from study.assets.refs import content_hash

        assert shown["asset"] == content_hash(released / "published" / "v2_variable_input")[:16]  # the version itself
        assert "API: changed" in shown["changes"] and v2.note[:40] in shown["note"]

        answers = []
        for image in images:
            shown = _upload(browser, image)
            assert shown["state"] == "done" and shown["answered"] == "v2_variable_input" and not shown["message"]
            _assert_answer_is_pythons(shown, v2, image)
            answers.append(tuple(r["probability"] for r in shown["rows"]))
        assert len(set(answers)) == len(images), "each image gets its own answer (not a constant page)"
        browser.screenshot(shots / "product.png")

        # switch to v1 (as a person would: the select's change): identity, notes and the answer follow it
        browser.evaluate("(() => { const s = document.getElementById('release'); s.value = 'v1_initial'; "
                         "s.dispatchEvent(new Event('change')); })()")
        browser.wait_for("document.body.dataset.release === 'v1_initial' && document.body.dataset.state === 'done'",
                         timeout=120)
        switched = _shown(browser)
        assert switched["version"] != shown["version"] and "v1_initial" in switched["version"]
        assert switched["note"] != shown["note"] and switched["note"] == v1.note
        assert switched["model"] != shown["model"] and "tiny_mobilenet_32" in switched["model"]
        assert switched["asset"] != shown["asset"]
        assert "NOT faithful" in switched["fidelity"] and "first version" in switched["changes"]
        _assert_answer_is_pythons(switched, v1, images[-1])  # the image already shown, re-answered by v1
        shown = _upload(browser, images[0])
        _assert_answer_is_pythons(shown, v1, images[0])

        # bad uploads: a message on the page, the last answer stays, and the page keeps answering
        for bad, words in ((corrupt, "cannot be decoded"), (text, "not an image"), (huge, "too large")):
            after = _upload(browser, bad)
            assert words in after["message"], after["message"]
            assert after["state"] == "done" and after["rows"] == shown["rows"]
        browser.screenshot(tmp_path / "product-bad-upload.png")
        shown = _upload(browser, images[1])
        assert not shown["message"]
        _assert_answer_is_pythons(shown, v1, images[1])
    finally:
        browser.close()
        server.close()
    alive = [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes left running: {[(p.pid, p.name()) for p in alive]}"
    assert (shots / "product.png").stat().st_size > 0


# --- a PyTorch member served through ONNX Runtime Web --------------------------------------------------------------

def _torch_probabilities(model, image: Path) -> np.ndarray:
    import torch

    from study.casestudy.training import load_torch_classifier
    from study.runtime.images import load_image

    classifier = load_torch_classifier(model.model_pt, model.fine_tuned_under())
    x = torch.from_numpy(np.ascontiguousarray(load_image(image, model.input_size)[None].transpose(0, 3, 1, 2)))
    with torch.no_grad():
        return classifier(x).numpy()[0]


@pytest.mark.slow
@needs_browser
def test_the_page_serves_a_pytorch_member_through_onnx_runtime_web_and_answers_like_pytorch(tmp_path):
    from study.casestudy import stand_ins
    from study.runtime.devtools import DevToolsBrowser

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDY_CACHE_DIR", str(tmp_path / "cache"))
        stand_ins.tiny_torch_classifier(tmp_path / "sweep", profile=PROFILES["smoke"])
        manifest, releases = product.build_manifest(members=tmp_path / "sweep")
        server = product.ProductServer(manifest, releases, models_dir=tmp_path / "models")
    (entry,) = manifest["releases"]
    release = releases[entry["id"]]
    assert entry["servable"] and entry["runtime"] == "onnx" and entry["model_url"].endswith("/model.onnx")
    assert manifest["default"] == entry["id"] and entry["size_mb"] > 0
    assert "onnx_web_node" in entry["fidelity"]["detail"]  # the fidelity that matters is the served format's
    images = [p for p, _ in release.model.images][:3]
    browser = DevToolsBrowser(tmp_path / "chromium.log", width=1100, height=820)
    try:
        page = urllib.request.urlopen(server.url, timeout=10).read().decode()
        assert "/node_modules/onnxruntime-web/dist/ort.wasm.min.js" in page and "https://" not in page  # no CDN
        browser.navigate(server.url)
        browser.wait_for("document.body.dataset.state === 'ready'", timeout=120)
        answers = []
        for image in images:
            shown = _upload(browser, image)
            assert shown["state"] == "done" and shown["answered"] == entry["id"] and not shown["message"], shown
            reference = _torch_probabilities(release.model, image)
            top = [r["index"] for r in shown["rows"]]
            assert top[0] == int(np.argmax(reference)), (shown["rows"], reference)
            # the same function on the same pixels: ONNX Runtime Web against PyTorch (and two decoders) apart
            np.testing.assert_allclose([r["probability"] for r in shown["rows"]], reference[top], atol=2e-3)
            assert shown["rows"][0]["name"] == release.model.class_names[top[0]]
            assert shown["latency"] > 0 and shown["backend"] == "ONNX Runtime Web wasm"
            answers.append(tuple(r["probability"] for r in shown["rows"]))
        assert len(set(answers)) == len(images), "each image gets its own answer (not a constant page)"
    finally:
        browser.close()
        server.close()
    assert (tmp_path / "models").is_dir() and list((tmp_path / "models").glob("*/model.onnx"))
    alive = [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes left running: {[(p.pid, p.name()) for p in alive]}"
