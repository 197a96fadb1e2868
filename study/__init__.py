"""`study`: re-run, audit and extend "An Empirical Study on Release Engineering of AI Products".

A flat library, one module per concept of the paper:

- `config`    paths, profiles (embedded / paper / smoke) and their input checks
- `paper`     the paper's Tables I-XI as typed pandas tables (`data/paper/`)
- `report`    saving tables (CSV + LaTeX), figures (PDF + PNG) and named numbers with a manifest entry each
- `plots`     the one figure style used everywhere
- `reproduce` running the numbered notebooks through papermill
- `draft`     the paper draft (`paper/` -> `paper/build/draft.pdf`) from those outputs
- `cli`       `python -m study ...`, mirroring the library

Importing `study` is cheap: nothing heavy (TensorFlow, torch) and nothing from the network.
"""
from __future__ import annotations

__version__ = "0.1.0"
