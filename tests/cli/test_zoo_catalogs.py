"""`catalog build`, `families`, `versions` (study.cli.zoo_catalogs) on the fixture snapshots."""
from __future__ import annotations

import io
from contextlib import redirect_stdout

import pandas as pd

from study.cli import main
from study.config import ROOT
from tests import raw_sources

FIX = ROOT / "tests" / "fixtures" / "zoo"
TF2024 = FIX / "tfhub" / "2024"
FIRST_SEEN = FIX / "tfhub" / "first-seen.csv"
BROKEN = TF2024 / "google" / "models" / "broken" / "1.md"  # the fixture's malformed page (tests/fixtures/zoo/README.md)


def _fixture_assets(root):
    """The fixture's asset pages, read without the parser (tests/raw_sources.py), the malformed one left out."""
    return [p for p in raw_sources.tfhub_pages(root) if p.kind in ("Module", "Placeholder") and root / p.path != BROKEN]


def test_cli_build_writes_tables_and_reports_errors(tmp_path, capsys):
    out = tmp_path / "tf.csv.gz"
    assert main(["catalog", "build", "--zoo", "tfhub", "--snapshot", str(TF2024), "--first-seen", str(FIRST_SEEN),
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: google/models/broken/1.md:4" in err and "5 pages parsed, 1 skipped" in err
    # counted on the fixture's files: every page but the broken one parsed; line 4 is its unclosed comment
    pages = sorted(TF2024.rglob("*.md"))
    assert f"{len(pages) - 1} pages parsed, 1 skipped" in err
    line_4 = BROKEN.read_text().splitlines()[3]
    assert line_4.startswith("<!-- task:") and "-->" not in line_4
    v = pd.read_csv(tmp_path / "tf_versions.csv.gz")
    assert len(v) == 3 and (tmp_path / "tf_variants.csv.gz").exists() and (tmp_path / "tf_changelog.csv.gz").exists()
    assert set(zip(v["handle"], v["version"])) == {(p.handle, p.version) for p in _fixture_assets(TF2024)}
    assert main(["catalog", "build", "--zoo", "tfhub", "--snapshot", str(TF2024), "--strict", "--out", "-"]) == 2
    assert main(["catalog", "build", "--zoo", "hf", "--snapshot", str(TF2024), "--out", "-"]) == 2
    assert "unknown zoo 'hf'" in capsys.readouterr().err
    assert main(["catalog", "build", "--zoo", "tfhub", "--snapshot", str(tmp_path / "nope"), "--out", "-"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: snapshot folder")


def test_cli_families_csv():
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["families", "--zoo", "pytorch-hub", "--snapshot", str(FIX / "pytorch-hub"), "--csv", "-"])
    assert rc == 0  # the shipped annotation table names no fixture page: no families, but the columns are there
    df = pd.read_csv(io.StringIO(buf.getvalue()))
    assert {"task", "algorithm", "training_data", "members", "differences", "output_formats"} <= set(df.columns)
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["families", "--zoo", "tfhub", "--snapshot", str(FIX / "tfhub" / "2020"), "--csv", "-"]) == 0
    # the fixture's one family, counted on its pages: the assets with MobileNet V2 module pages
    mobilenets = {p.handle for p in _fixture_assets(FIX / "tfhub" / "2020")
                  if p.first("network-architecture") == "MobileNet V2"}
    assert pd.read_csv(io.StringIO(buf.getvalue()))["members"].tolist() == [2] == [len(mobilenets)]


def test_cli_versions(capsys):
    assert main(["versions", "--zoo", "tfhub", "--snapshot", str(FIX / "tfhub" / "2024"), "--table", "notes"]) == 0
    out = capsys.readouterr().out
    assert "serving_signature" in out
    # every note of the fixture's changelogs, read from the pages: each under its version, word for word
    notes = pd.read_csv(io.StringIO(out))
    logs = {h: raw_sources.changelog(ps[-1].text)  # the latest page's changelog
            for h, ps in raw_sources.by_handle(_fixture_assets(TF2024), ("Module", "Placeholder")).items()}
    assert set(zip(notes["handle"], notes["version"])) == {(h, v) for h, log in logs.items() for v in log}
    assert all(" ".join(r.note.split()) in logs[r.handle][r.version] for r in notes.itertuples())
    serving = notes[notes["category"] == "serving_signature"]
    assert [(r.handle, r.version) for r in serving.itertuples()] == \
        [(h, v) for h, log in logs.items() for v, text in log.items() if "serving_default" in text]
    assert main(["versions", "--zoo", "pytorch-hub", "--snapshot", str(FIX / "pytorch-hub")]) == 2
    assert "only TF Hub keeps versions" in capsys.readouterr().err
