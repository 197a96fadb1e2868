"""`study`: re-run, audit and extend "An Empirical Study on Release Engineering of AI Products".

One sub-package per part of the study, on a floor of shared modules (CONTRIBUTING.md has the whole layout):

- the floor: `config` (paths, profiles at the boundary), `profiles` (what each profile means), `paper` (the paper's
  Tables I-XI), `protocol`, `report` (tables, figures and numbers with a manifest entry each), `plots` (the one
  figure style), `page`, `columns`, `files`, `errors`, `failpoints`
- `cache` (content keys), `runtime` (processes, Chromium, servers, TF.js), `assets` (the zoo and its assets)
- `zoos` (RQ2, RQ3 from the zoo pages), `decision` (Sections VII-G/I), `casestudy` (Section VII),
  `deployment` (RQ1), `releases` (RQ3 made executable), `audit` (the paper audit)
- `runs` (the notebooks run through papermill, compared), `draft` (the paper draft from their outputs)
- `cli`: `python -m study ...`, apart from the library

Importing `study` is cheap: nothing heavy (TensorFlow, torch) and nothing from the network.
"""
from __future__ import annotations

import importlib.util
import os
import sys

__version__ = "0.1.0"

# `tf.keras` is Keras 2 (tf-keras) in every process of the study, as TF Hub asks for `hub.KerasLayer` on TF >= 2.16:
# set before TensorFlow loads (children inherit it), so Keras 3, which no code here uses, is never imported beside
# tf-keras (about 0.9 CPU-s in each process that uses tf-keras: docs/measured/tests.md). A value the user set stays.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# TF Hub's `hub.KerasLayer(path)` first asks for Keras 2's load options as `keras.saving.legacy.saved_model`: with
# Keras 3 installed (TensorFlow's dependency) that imports all of Keras 3, and matplotlib, only to fail, and TF Hub
# then loads without options. Where the installed `keras` has no such module, it is marked absent (None in
# sys.modules: the import fails at once): the same outcome without the import (about 0.45 CPU-s and tens of MB in
# each process that builds a KerasLayer, the training workers included: docs/measured/tests.md).
_keras = importlib.util.find_spec("keras")
if _keras is not None and _keras.origin and not os.path.isdir(
        os.path.join(os.path.dirname(_keras.origin), "saving", "legacy", "saved_model")):
    sys.modules.setdefault("keras.saving.legacy.saved_model", None)
del _keras
