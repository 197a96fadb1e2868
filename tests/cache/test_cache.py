"""Content keys (study.cache) and the keyed `make reproduce`: what changes a key, what does not, cached
notebooks, steps made under another key recomputed, and a kill -9 mid-notebook."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from study import files
from study.cache import keys
from study.cache.step import Step
from study.cli import main
from study.config import PROFILES, ROOT
from study.report import read_manifest
from study.runs import reproduce

# --------------------------------------------------------------------- a small `study` tree of our own
MODULES = {
    "study/__init__.py": '"""pkg."""\n',
    "study/config.py": "ROOT = 1\n",
    "study/sub/__init__.py": "",
    "study/sub/deep.py": "from study import config\n\ndef f():\n    return config.ROOT\n",
    "study/families.py": ("import json\n\ndef g():\n    from study.sub.deep import f  # function-level\n"
                          "    return f()\n"),
    "study/worker.py": "import subprocess\nCMD = ['python', '-m', 'study.runner']\n",
    "study/runner.py": "import study.config\n",
    "study/cli.py": "import study.unused\n",
    "study/unused.py": "X = 1\n",
    "study/main_only.py": "if __name__ == '__main__':\n    from study import cli\n",
    "study/rel.py": "from .sub import deep\nfrom . import config\n",
}


@pytest.fixture
def tree(tmp_path):
    for rel, text in MODULES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _notebook(path: Path, *cells: str) -> Path:
    doc = {"cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": [], "execution_count": None}
                     for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(doc))
    return path


def _touch(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a new file version for the digest cache


def test_imports_are_found_transitively_at_every_depth(tree):
    closure = keys.module_closure(["study.families", "study.worker", "study.rel"], tree)
    assert set(closure) == {"study", "study.families", "study.sub", "study.sub.deep", "study.config",
                            "study.worker", "study.runner", "study.rel"}
    assert "study.unused" not in closure and "study.cli" not in closure
    # `if __name__ == "__main__":` only dispatches to the command line
    assert set(keys.module_closure(["study.main_only"], tree)) == {"study", "study.main_only"}


def test_key_changes_with_code_parameters_inputs_and_lock_files(tree, tmp_path, monkeypatch):
    nb = _notebook(tmp_path / "01_x.ipynb", 'profile = "embedded"', "from study import families\nfamilies.g()")
    data = tmp_path / "input.csv"
    data.write_text("a\n1\n")
    lock, npm_lock = tmp_path / "lock.txt", tmp_path / "package-lock.json"
    lock.write_text("numpy==2.0\n")
    npm_lock.write_text("{}")
    monkeypatch.setattr(keys, "ENVIRONMENT_FILES", (lock, npm_lock))

    def comps(**params):
        return reproduce.notebook_components(nb, params or {"profile": "smoke"}, [str(data)], root=tree)

    base = comps()
    assert "study/sub/deep.py" in base and "study/unused.py" not in base

    def diff_after(change) -> list[str]:
        change()
        return keys.changed(base, comps())

    assert keys.changed(base, comps(profile="embedded")) == ["parameter profile"]
    assert diff_after(lambda: _touch(tree / "study/sub/deep.py", MODULES["study/sub/deep.py"] + "X = 2\n")) \
        == ["study/sub/deep.py"]
    base = comps()
    assert diff_after(lambda: _touch(data, "a\n2\n")) == [f"input {data}"]
    base = comps()
    assert diff_after(lambda: _touch(lock, "numpy==2.1\n")) == [str(lock)]
    base = comps()
    monkeypatch.setattr(keys, "machine", lambda: {"cpu_model": "other", "cores": 64})
    assert keys.changed(base, comps()) == ["machine"]


def test_comments_docstrings_and_unused_modules_do_not_change_the_key(tree, tmp_path):
    nb = _notebook(tmp_path / "02_x.ipynb", "from study import families  # RQ2")
    before = keys.key_of(reproduce.notebook_components(nb, {"profile": "smoke"}, root=tree))
    _touch(tree / "study/families.py", '"""Families."""\n' + MODULES["study/families.py"].replace(
        "return f()", "return f()  # same code,\n    # new comment"))
    _touch(tree / "study/sub/deep.py", MODULES["study/sub/deep.py"].replace("def f():", "def f():\n    'doc'"))
    _touch(tree / "study/unused.py", "X = 2  # changed, but no notebook module imports it\n")
    _notebook(nb, "from study import families  # RQ2, reworded comment")
    assert keys.key_of(reproduce.notebook_components(nb, {"profile": "smoke"}, root=tree)) == before


def test_real_notebooks_use_only_the_modules_they_import():
    fam = reproduce.notebook_modules(reproduce.notebooks(["02_"])[0])
    assert any(p.endswith("families.py") for p in fam) and not any(p.endswith("finetune.py") for p in fam)
    audit = reproduce.notebook_modules(reproduce.notebooks(["07_"])[0])
    assert not any(p.endswith("families.py") for p in audit)


# ---------------------------------------------------------------------------------- steps
def test_a_step_under_another_key_or_machine_is_foreign(tmp_path, monkeypatch):
    monkeypatch.delenv("STUDY_FORCE", raising=False)
    step = Step.of(tmp_path, "demo", ["study.files"], {"epochs": 1})
    assert step.state() == "foreign" and step.reason() == "no record"
    step.start()
    assert step.state() == "running"  # interrupted: resume under the same key
    step.finish()
    assert Step.of(tmp_path, "demo", ["study.files"], {"epochs": 1}).state() == "done"
    other = Step.of(tmp_path, "demo", ["study.files"], {"epochs": 2})
    assert other.state() == "foreign" and other.reason() == "config changed"
    monkeypatch.setattr(keys, "machine", lambda: {"cpu_model": "elsewhere", "cores": 96})
    moved = Step.of(tmp_path, "demo", ["study.files"], {"epochs": 1})
    assert moved.state() == "foreign" and moved.reason() == "machine changed"
    monkeypatch.undo()
    monkeypatch.setenv("STUDY_FORCE", "run-1")  # reproduce --force: recompute once per forced run
    forced = Step.of(tmp_path, "demo", ["study.files"], {"epochs": 1})
    assert forced.state() == "foreign"
    forced.finish()
    assert forced.state() == "done"
    (tmp_path / ".step.json").write_text('{"name": "demo", "key": ')  # half-written: never done
    assert forced.state() == "foreign"


@pytest.mark.slow  # builds an embedded asset twice
def test_an_embedded_asset_built_under_another_key_is_rebuilt(outdirs, own_zoo, monkeypatch):
    from study.assets import zoo

    monkeypatch.delenv("STUDY_FORCE", raising=False)
    member = zoo.members(PROFILES["smoke"])[0]
    dest = zoo.build_embedded(member)
    assert zoo.embedded_current(member)
    built = json.loads((dest / "study_build.json").read_text())
    assert zoo.build_embedded(member) == dest
    assert json.loads((dest / "study_build.json").read_text()) == built  # reused: same key
    record = json.loads((dest / ".step.json").read_text())
    record["components"]["code"], record["key"] = "0" * 64, "0" * 64  # as if another builder had made it
    files.write_text(dest / ".step.json", json.dumps(record))
    assert not zoo.embedded_current(member)
    time.sleep(0.01)
    zoo.build_embedded(member)
    assert zoo.embedded_current(member)
    assert json.loads((dest / ".step.json").read_text())["key"] != "0" * 64


# ------------------------------------------------------------------------------- notebooks
# Notebook 07 on its own: the stated noise and no sampling error instead of notebook 04's outputs (not run here).
ALONE = {"noise_model": "", "sampling": ""}
ALONE_ARGS = ["--param", "noise_model=", "--param", "sampling="]

@pytest.mark.notebook
def test_a_notebook_is_cached_on_the_second_run_and_says_why_it_reruns(outdirs, capsys):
    nb = reproduce.notebooks(["07_"])[0]
    assert reproduce.plan(nb, {"profile": "smoke", **ALONE}).reason == "no finished run recorded"
    first = reproduce.reproduce(PROFILES["smoke"], ["07_"], ALONE, progress=False)
    assert not first[0].cached
    second = reproduce.reproduce(PROFILES["smoke"], ["07_"], ALONE, progress=False)
    assert second[0].cached and "07_paper_audit: cached (key " in capsys.readouterr().err  # progress: stderr
    assert reproduce.plan(nb, {"profile": "embedded", **ALONE}).reason == "parameter profile changed"
    record = reproduce.read_record(nb)
    table = next(p for p in record["outputs"] if p.endswith("audit_paper_claims.csv"))
    assert any(i.endswith(".csv") for i in record["inputs"])  # the declared inputs, with checksums
    Path(table).unlink()
    assert reproduce.plan(nb, {"profile": "smoke", **ALONE}).reason == f"output missing ({table})"
    assert main(["reproduce", "--profile", "smoke", "--only", "07_", "--dry-run", *ALONE_ARGS]) == 0
    assert "07_paper_audit: re-run: output missing" in capsys.readouterr().out
    assert not Path(table).exists()  # a dry run runs nothing
    forced = reproduce.reproduce(PROFILES["smoke"], ["07_"], ALONE, force=True, progress=False)
    assert not forced[0].cached and Path(table).exists()


@pytest.mark.slow
@pytest.mark.notebook
def test_kill_9_mid_notebook_then_rerun_gives_complete_consistent_results(outdirs):
    cmd = [sys.executable, "-m", "study", "reproduce", "--profile", "smoke", "--only", "07_", *ALONE_ARGS]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    manifest = outdirs["results"] / "manifest.json"
    deadline = time.monotonic() + 240
    try:  # kill once the notebook has saved its first artefact, before it finishes
        while not (manifest.exists() and read_manifest(manifest)["artifacts"]):
            assert proc.poll() is None and time.monotonic() < deadline, "the notebook ended before the kill"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process group we started: the CLI and its kernel
        proc.wait()
    nb = reproduce.notebooks(["07_"])[0]
    assert reproduce.read_record(nb) is None  # the killed run is not taken as done
    assert reproduce.plan(nb, {"profile": "smoke", **ALONE}).reason == "no finished run recorded"

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "07_paper_audit: re-run: no finished run recorded" in rerun.stderr
    record = reproduce.read_record(nb)
    assert record and reproduce.plan(nb, {"profile": "smoke", **ALONE}).reason is None
    artifacts = read_manifest(manifest)["artifacts"]
    assert len(artifacts) >= 8
    for path, entry in artifacts.items():  # every manifest entry matches the file beside it
        assert files.sha256(path) == entry["sha256"], path
        assert entry["notebook"] == "07_paper_audit"
    assert set(record["outputs"]) >= set(artifacts)
    assert (outdirs["results"] / "notebooks" / "07_paper_audit.ipynb").is_file()
    assert not list((outdirs["results"] / "notebooks").glob(".*partial*"))


def test_a_notebook_edited_while_it_ran_is_not_taken_as_done(outdirs):
    """The record keeps the key of the code as the run started: an edit during the run makes the next plan re-run."""
    nb = reproduce.notebooks(["07_"])[0]
    params = {"profile": "smoke"}
    before = reproduce.plan(nb, params).components
    output = outdirs["results"] / "notebooks" / nb.name
    output.parent.mkdir(parents=True)
    output.write_text("{}")
    run = reproduce.NotebookRun(nb.stem, output, 1.0)
    reproduce._finished(nb, params, "2026-01-01T00:00:00+00:00", run,
                        before={**before, "code cells": "as-it-was-when-the-run-started"})
    assert reproduce.plan(nb, params).reason == "code cells changed"
    reproduce._finished(nb, params, "2026-01-01T00:00:00+00:00", run, before=before)
    assert reproduce.plan(nb, params).reason is None
