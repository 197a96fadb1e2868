"""`data synth`, `data split` (study.cli.data)."""
from __future__ import annotations

import warnings

from study import cli
from study.casestudy import dataset


def test_cli_synth_and_split(tmp_path, capsys):
    # 10 per class: fewer would be a "tiny class" DatasetWarning (dataset.TINY_CLASS)
    assert cli.main(["data", "synth", "--out", str(tmp_path / "s"), "--per-class", "10", "--size", "32"]) == 0
    assert len(list((tmp_path / "s").rglob("*.jpg"))) == 50
    assert cli.main(["data", "split", "--src", str(tmp_path / "s"), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "daisy" in out and (tmp_path / "o" / "split.csv").exists() and (tmp_path / "o" / "table_xi.csv").exists()
    assert cli.main(["data", "split", "--src", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean, balanced folder raises no DatasetWarning
        dataset.split_dataset(tmp_path / "s")
