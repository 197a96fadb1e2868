"""`decide` (study.cli.decide): the decision on files, its one-line errors, `--bootstrap`'s option errors."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd

from study.cli import main
from tests.decision.test_choice import table_ix, table_x


def test_decide_cli_on_files(tmp_path, capsys):
    ix, x, out = tmp_path / "table_ix.csv", tmp_path / "table_x.csv", tmp_path / "decision.csv"
    table_ix().to_csv(ix, index=False)
    table_x().to_csv(x, index=False)
    assert main(["decide", "--table-ix", str(ix), "--table-x", str(x), "--model", "b",
                 "--priority", "accuracy>=0.6", "min:inference", "--csv", str(out)]) == 0
    df = pd.read_csv(out)
    assert set(df["role"]) == {"selected", "given"}
    assert (df[df["role"] == "given"]["model"] == "b").all()
    assert "selected" in capsys.readouterr().err


def test_decide_cli_errors_are_one_line(tmp_path, capsys):
    x = tmp_path / "table_x.csv"
    table_x().drop(columns=["memory"]).to_csv(x, index=False)
    assert main(["decide", "--table-x", str(x), "--csv", "-"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "memory" in err and len(err.strip().splitlines()) == 1


def test_decide_bootstrap_bad_input(capsys, tmp_path):
    assert main(["decide", "--bootstrap", "0", "--csv", "-"]) == 2
    assert "whole number >= 1" in capsys.readouterr().err
    assert main(["decide", "--bootstrap", "5", "--model", "mobilenet_v2_100_160", "--csv", "-"]) == 2
    assert "drop --model" in capsys.readouterr().err
    assert main(["decide", "--bootstrap", "5", "--sweep", str(tmp_path / "nope"), "--csv", "-"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_decide_and_audit_are_subcommands():
    out = subprocess.run([sys.executable, "-m", "study", "--help"], capture_output=True, text=True, timeout=120)
    assert "decide" in out.stdout and "audit-paper" in out.stdout
