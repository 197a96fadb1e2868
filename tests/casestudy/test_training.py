"""The training worker's preparation: embedded assets built before any measured run, split over workers."""
from __future__ import annotations

import pytest

from study.assets import zoo
from study.casestudy import training
from study.config import PROFILES

SMALL = ("mobilenet_v1_025_128", "mobilenet_v2_035_96")


def test_build_groups_balance_the_input_pixels_and_keep_every_member_once():
    members = [m for m in zoo.members(PROFILES["embedded"]) if m.backend == "tf"]
    groups = training.build_groups(members, 2)
    assert len(groups) == 2 and sorted(sum(groups, [])) == sorted(m.name for m in members)
    cost = {m.name: m.input_size ** 2 for m in members}
    loads = sorted(sum(cost[n] for n in g) for g in groups)
    assert loads[1] - loads[0] <= max(cost.values())  # greedy largest-first: within one member of balanced
    assert training.build_groups(members[:1], 4) == [[members[0].name]]  # never an empty group
    assert training.build_groups(members, 1) == [sorted((m.name for m in members), key=lambda n: -cost[n])]


@pytest.mark.slow
def test_two_workers_build_the_embedded_assets_once(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(training, "BUILD_WORKERS", 2)
    training.prepare_assets(PROFILES["embedded"], list(SMALL))
    assert all(zoo.embedded_current(n) for n in SMALL)
    stamps = {n: (zoo.embedded_path(zoo.get_member(n)) / "saved_model.pb").stat().st_mtime_ns for n in SMALL}
    training.prepare_assets(PROFILES["embedded"], list(SMALL))  # built under the current key: nothing is rebuilt
    assert stamps == {n: (zoo.embedded_path(zoo.get_member(n)) / "saved_model.pb").stat().st_mtime_ns
                      for n in SMALL}


def test_a_failing_build_names_its_members_and_the_cause(tmp_path, monkeypatch):
    from study.errors import StudyError

    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path))
    (tmp_path / "zoo").write_text("a file where the zoo's folder belongs")
    with pytest.raises(StudyError) as err:
        training.prepare_assets(PROFILES["embedded"], list(SMALL))
    msg = str(err.value)
    assert "could not prepare the assets of" in msg and all(n in msg for n in SMALL)
    assert "NotADirectoryError" in msg or "FileExistsError" in msg
