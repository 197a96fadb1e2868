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
