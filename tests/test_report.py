from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from study import files, plots
from study.report import Report, read_manifest


def test_table_writes_csv_latex_and_manifest(outdirs, tmp_path):
    source = tmp_path / "input.csv"
    source.write_text("a\n1\n")
    report = Report("99_test", parameters={"profile": "smoke"})
    df = pd.DataFrame({"model": ["mobilenet_v2_100_160"], "accuracy": [0.662], "note": ["50%"]})
    csv_path, tex_path = report.table(df, "t1", inputs=[source], caption="A caption")
    assert pd.read_csv(csv_path).equals(df)
    tex = tex_path.read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex  # booktabs
    assert "mobilenet\\_v2\\_100\\_160" in tex and "50\\%" in tex  # escaped
    manifest = read_manifest(outdirs["results"] / "manifest.json")["artifacts"]
    entry = manifest[str(csv_path)]
    assert entry["notebook"] == "99_test" and entry["parameters"] == {"profile": "smoke"}
    assert entry["inputs"] == {str(source): files.sha256(source)}
    assert entry["sha256"] == files.sha256(csv_path)
    assert entry["git_commit"] and entry["created"]


def test_figure_writes_pdf_and_png(outdirs):
    fig, ax = plots.figure()
    ax.plot([0, 1], [1, 0])
    pdf, png = Report("99_test").figure(fig, "f1")
    assert pdf.read_bytes().startswith(b"%PDF") and png.read_bytes().startswith(b"\x89PNG")
    assert set(read_manifest(outdirs["results"] / "manifest.json")["artifacts"]) == {str(pdf), str(png)}


def test_both_formats_are_cropped_to_the_size_the_draft_is_told(outdirs):
    """The PDF page and the PNG are the recorded `size_in` (what the draft places the figure by) plus savefig's pad
    on each side, for a figure with rotated tick labels (whose extents differ a little between renderers)."""
    import re

    from PIL import Image

    fig, ax = plots.figure("full", 0.4)
    ax.bar([f"member_{i}_with_a_long_name" for i in range(10)], range(10))
    ax.tick_params(axis="x", rotation=45)
    pdf, png = Report("99_test").figure(fig, "f2")
    w, h = read_manifest(outdirs["results"] / "manifest.json")["artifacts"][str(pdf)]["layout"]["size_in"]
    pad = 2 * plots.plt.rcParams["savefig.pad_inches"]
    box = [float(v) for v in re.search(rb"/MediaBox \[([^\]]*)\]", pdf.read_bytes()).group(1).split()]
    assert box[2] - box[0] == pytest.approx((w + pad) * 72, abs=0.5) and box[3] - box[1] == pytest.approx((h + pad) * 72, abs=0.5)
    dpi = plots.plt.rcParams["savefig.dpi"]
    assert Image.open(png).size == pytest.approx(((w + pad) * dpi, (h + pad) * dpi), abs=2)


def test_rerun_replaces_manifest_entries(outdirs):
    report = Report("99_test")
    df = pd.DataFrame({"x": [1]})
    report.table(df, "t")
    report.table(df.assign(x=2), "t")
    arts = read_manifest(outdirs["results"] / "manifest.json")["artifacts"]
    assert len(arts) == 2  # csv + tex, once each


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "table.csv"
    files.write_text(target, "old\n")

    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="^disk full$"):  # the writer's own error, passed through unchanged
        files.atomic_write(target, boom)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]  # no temp file left


def test_kill_during_write_keeps_the_previous_file(tmp_path):
    """SIGKILL a process in the middle of a large atomic write: the old content survives intact."""
    target = tmp_path / "table.csv"
    files.write_text(target, "old\n")
    code = textwrap.dedent(f"""
        import sys, time
        from study import files
        def slow(tmp):
            with open(tmp, "w") as fh:
                fh.write("partial"); fh.flush(); print("writing", flush=True); time.sleep(60)
        files.atomic_write({str(target)!r}, slow)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert target.read_text() == "old\n"


def test_unwritable_output_dir_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="not writable.*--out"):
        files.ensure_writable_dir(blocker / "sub")


def test_atomic_dir_swaps_in_a_complete_folder_or_keeps_the_old_one(tmp_path):
    dest = tmp_path / "model"
    with files.atomic_dir(dest) as tmp:
        (tmp / "v").write_text("1")
    assert (dest / "v").read_text() == "1"
    with pytest.raises(RuntimeError, match="^killed mid-build$"):  # the body's own error, passed through unchanged
        with files.atomic_dir(dest) as tmp:
            (tmp / "v").write_text("2")
            raise RuntimeError("killed mid-build")
    assert (dest / "v").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_write_table_to_stdout_or_file(tmp_path, capsys):
    df = pd.DataFrame({"a": [1, 2]})
    files.write_table("-", df)
    assert capsys.readouterr().out.splitlines() == ["a", "1", "2"]
    files.write_table(tmp_path / "t.csv", df, what="claims", command="audit-paper")
    assert capsys.readouterr().err.strip() == f"[audit-paper] 2 claims -> {tmp_path / 't.csv'}"
    assert pd.read_csv(tmp_path / "t.csv").equals(df)


def test_numbers_writes_each_value_with_its_description_and_format(outdirs):
    import json

    paths = Report("99_test").numbers({"n_rows": (3, "rows"), "share": (41.7, "percent", "{:.0f}")})
    records = {p.stem: json.loads(p.read_text()) for p in paths}
    assert records["n_rows"] == {"name": "n_rows", "value": 3, "text": "3", "description": "rows"}
    assert records["share"]["text"] == "42" and records["share"]["description"] == "percent"


def test_text_writes_the_reading_and_returns_markdown(outdirs):
    shown = Report("99_test").text("a_reading", "Three of *four* rows match.\n")
    path = outdirs["results"] / "text" / "a_reading.md"
    assert path.read_text() == "Three of *four* rows match.\n" and shown.data.startswith("Three")
    assert str(path) in read_manifest(outdirs["results"] / "manifest.json")["artifacts"]
