"""`catalog build`, `families`, `versions` (study.cli.zoos) on the fixture snapshots."""
from __future__ import annotations

import io
from contextlib import redirect_stdout

import pandas as pd

from study.cli import main
from study.config import ROOT

FIX = ROOT / "tests" / "fixtures" / "zoo"
TF2024 = FIX / "tfhub" / "2024"
FIRST_SEEN = FIX / "tfhub" / "first-seen.csv"


def test_cli_build_writes_tables_and_reports_errors(tmp_path, capsys):
    out = tmp_path / "tf.csv.gz"
    assert main(["catalog", "build", "--zoo", "tfhub", "--snapshot", str(TF2024), "--first-seen", str(FIRST_SEEN),
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: google/models/broken/1.md:4" in err and "5 pages parsed, 1 skipped" in err
    v = pd.read_csv(tmp_path / "tf_versions.csv.gz")
    assert len(v) == 3 and (tmp_path / "tf_variants.csv.gz").exists() and (tmp_path / "tf_changelog.csv.gz").exists()
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
    assert pd.read_csv(io.StringIO(buf.getvalue()))["members"].tolist() == [2]


def test_cli_versions(capsys):
    assert main(["versions", "--zoo", "tfhub", "--snapshot", str(FIX / "tfhub" / "2024"), "--table", "notes"]) == 0
    assert "serving_signature" in capsys.readouterr().out
    assert main(["versions", "--zoo", "pytorch-hub", "--snapshot", str(FIX / "pytorch-hub")]) == 2
    assert "only TF Hub keeps versions" in capsys.readouterr().err
