"""study.runs.reproduce: which notebook gets which parameter (`--param`, `make reproduce CLUSTER=`)."""
from __future__ import annotations

import pytest

from study.cli import main
from study.errors import StudyError
from study.runs import reproduce


def _by_stem(params):
    return {nb.stem[:2]: p for nb, p in params.items()}


def test_a_parameter_goes_only_to_the_notebooks_that_declare_it():
    nbs = reproduce.notebooks(None)
    assert reproduce.declared_parameters(nbs[3]) == {"profile", "cluster"}  # 04: the sweep on a Ray cluster
    got = _by_stem(reproduce.parameters_for(nbs, {"profile": "smoke", "cluster": "10.0.0.1:6379", "noise_model": ""}))
    # the notebooks whose expensive work runs on a cluster: 01, 04, 05, 08, 09 (docs/cluster.md)
    assert {k for k, v in got.items() if "cluster" in v} == {"01", "04", "05", "08", "09"}
    assert got["04"] == got["01"] == {"profile": "smoke", "cluster": "10.0.0.1:6379"}
    assert got["06"] == got["07"] == {"profile": "smoke", "noise_model": ""}
    assert got["02"] == {"profile": "smoke"}  # its key does not change with another notebook's parameter
    with pytest.raises(StudyError, match=r"no notebook run here has the parameter\(s\) clustr"):
        reproduce.parameters_for(nbs, {"profile": "smoke", "clustr": "x"})


def test_the_command_line_names_a_parameter_no_notebook_has(capsys):
    assert main(["reproduce", "--profile", "smoke", "--dry-run", "--only", "02", "--param", "cluster=h:1"]) == 2
    assert "no notebook run here has the parameter(s) cluster" in capsys.readouterr().err
