from __future__ import annotations

import subprocess

import pytest

from study import config
from study.assets import flowers
from study.config import ROOT


def test_unknown_profile_names_the_valid_ones():
    with pytest.raises(config.ProfileError, match="valid profiles: smoke, embedded, paper"):
        config.get_profile("fast")


def test_profile_defaults_to_environment(monkeypatch):
    monkeypatch.setenv("PROFILE", "smoke")
    assert config.get_profile().name == "smoke"
    monkeypatch.delenv("PROFILE")
    assert config.get_profile().name == "embedded"


def test_paper_profile_fails_fast_without_flower_photos(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWER_PHOTOS", str(tmp_path / "nowhere"))
    monkeypatch.setattr(config, "DATA", tmp_path)
    with pytest.raises(config.ProfileError, match="(?s)Flower Photos.*curl -L"):
        flowers.check_profile_inputs(config.get_profile("paper"))


def test_paper_profile_accepts_a_local_copy(monkeypatch, tmp_path):
    (tmp_path / "flower_photos" / "daisy").mkdir(parents=True)
    monkeypatch.setenv("FLOWER_PHOTOS", str(tmp_path / "flower_photos"))
    flowers.check_profile_inputs(config.get_profile("paper"))


def test_embedded_needs_nothing():
    flowers.check_profile_inputs(config.get_profile("embedded"))


def test_make_rejects_an_unknown_profile():
    out = subprocess.run(["make", "-s", "check-profile", "PROFILE=bogus"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0
    assert "unknown PROFILE=bogus; valid profiles: embedded paper" in out.stderr


def test_each_profile_states_every_fact_on_the_profile_page():
    """study.profiles: the three profiles, each fact a field its reader finds (names real, plans within the zoo)."""
    import dataclasses

    from study import profiles
    from study.assets import zoo
    from study.deployment import fidelity, scenarios

    assert config.PROFILES is profiles.PROFILES and list(config.PROFILES) == ["smoke", "embedded", "paper"]
    assert set(config.RUNNABLE_PROFILES) == set(config.PROFILES) and config.DEFAULT_PROFILE in config.REPRODUCE_PROFILES
    every_format = {f for formats in fidelity.FORMATS.values() for f in formats}
    for p in config.PROFILES.values():
        hash(p)  # frozen all the way down: a profile is a value
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.sweep.epochs = 9
        names = {m.name for m in zoo.members(p)}
        assert len(names) == len(zoo.members(p)) and (p.members is None) == p.online
        assert (p.synth is None) == p.online  # an online profile reads Flower Photos
        assert p.noise_plan is None or set(p.noise_plan.members) <= names
        assert set(p.fidelity_formats) <= every_format
        assert scenarios.check_formats(list(p.matrix_formats)) is not None  # a StudyError names an unknown one
    assert config.PROFILES["paper"].sweep.interval == 5.0  # the paper's protocol (study.protocol.PAPER)
