"""The paper's measurement protocol (Section VII), as typed facts: one home for every number of it.

Each value cites the sentence it comes from (`Recipe`: what the paper leaves unstated). The profiles (`smoke`, `embedded`) scale some of them down to fit
this machine; their `sweep` in `study.profiles` says which and why.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    finetune_interval_s: float  # VII-E: "the stats function is run every 5 seconds"
    cooldown_samples: int  # VII-E: "in cool down period, stats function will be run 6 times" (m = 12, Formula 1)
    test_interval_s: float  # VII-F: stats every second while testing in the browser
    batch_size: int  # VII-C: training batch size
    epochs: int  # not stated in the paper; the TF Hub image-classifier default
    # VII-B, Table XI: the split rule, inferred (not stated): per class, testing = floor(10 %) of the images, then
    # validation = floor(20 %) of the rest (the TF retraining scripts' convention). These two numbers give all 15
    # counts of Table XI from its class totals (tests/casestudy/test_dataset.py re-derives them from image folders).
    testing_fraction: float = 0.10
    validation_fraction: float = 0.20  # of what is left after the testing images


PAPER = Protocol(finetune_interval_s=5.0, cooldown_samples=6, test_interval_s=1.0, batch_size=32, epochs=5)


@dataclass(frozen=True)
class Recipe:
    """How a member is fine-tuned (the head and the optimiser). Not stated in the paper: the defaults of TF Hub's
    image-classifier retraining tool (`make_image_classifier`), which the paper's set-up follows; the same recipe
    trains TF and torch assets (study.casestudy.training)."""

    learning_rate: float = 0.005  # SGD
    momentum: float = 0.9
    weight_decay: float = 1e-4  # L2 on the head's kernel (Keras) / SGD weight decay (torch)
    dropout: float = 0.2  # before the classification head
    label_smoothing: float = 0.1


RECIPE = Recipe()
