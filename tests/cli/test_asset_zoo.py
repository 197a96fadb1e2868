"""`zoo` (study.cli.asset_zoo)."""
from __future__ import annotations

from study import cli


def test_cli_lists_every_member(capsys):
    assert cli.main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "44 members (38 TF Hub MobileNets, 3 EfficientNet-Lite as TF Hub assets and 3 in PyTorch" in out
    assert "google/imagenet/mobilenet_v2_140_224/feature_vector" in out
    assert cli.main(["zoo", "list", "--profile", "smoke"]) == 0
    assert "2 members (1 TF Hub MobileNet, 1 EfficientNet-Lite as TF Hub assets and 0 in PyTorch" in capsys.readouterr().out
    assert cli.main(["zoo", "build", "--members", "resnet_50"]) == 2
