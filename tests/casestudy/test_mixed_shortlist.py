"""A shortlist mixing a variable-size SavedModel with fixed-size zoo members (issue 26, item 6).

`--input-size` is the input size of assets whose size is variable; fixed-size assets keep theirs, so such a
shortlist resolves and fine-tunes. `REF@SIZE` states one asset's size. The variable-size asset is RQ3's
published `v2_variable_input` (input (None, None, None, 3), resized inside the model).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from study.casestudy import finetune
from study.config import PROFILES
from study.assets import refs as asset_refs
from study.errors import StudyError
from tests.releases.conftest import published  # noqa: F401 - the session's published versions (a fixture)

pytestmark = pytest.mark.slow

FIXED = "mobilenet_v1_025_128"  # a smoke member, 128 px


@pytest.fixture
def variable_saved_model(published, outdirs):
    """RQ3's `v2_variable_input` of the session's published versions (read, never changed, here)."""
    return published / "v2_variable_input"


def test_mixed_shortlist_resolves_and_fine_tunes(variable_saved_model, tmp_path):
    v2 = str(variable_saved_model)
    with pytest.raises(StudyError, match="takes images of any size; state one with --input-size N or REF@N"):
        finetune.sweep_members(PROFILES["smoke"], [v2, FIXED])
    sizes = {a.name: a.input_size for a in finetune.sweep_members(PROFILES["smoke"], [v2, FIXED], input_size=96)}
    assert sizes == {"v2_variable_input": 96, FIXED: 128}  # --input-size: the variable one only
    sizes = {a.name: a.input_size for a in finetune.sweep_members(PROFILES["smoke"], [f"{v2}@64", f"{FIXED}@128"])}
    assert sizes == {"v2_variable_input": 64, FIXED: 128}  # REF@SIZE, per asset
    with pytest.raises(StudyError, match=r"takes 128 px images \(fixed\), not 96"):
        asset_refs.resolve(f"{FIXED}@96", PROFILES["smoke"])

    out = tmp_path / "sweep"  # the command of the issue: it stopped with "takes 128 px images, not --input-size 96"
    proc = subprocess.run([sys.executable, "-m", "study", "finetune", "--profile", "smoke", "--members", v2, FIXED,
                           "--input-size", "96", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    t9 = pd.read_csv(out / "table_ix.csv").set_index("model")
    assert sorted(t9.index) == sorted(["v2_variable_input", FIXED]) and (t9["status"] == "ok").all()
    assert t9.loc["v2_variable_input", "asset"] == v2
    for name, size in (("v2_variable_input", 96), (FIXED, 128)):
        assert json.loads((out / "models" / name / "meta.json").read_text())["input_size"] == size
