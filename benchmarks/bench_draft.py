"""Build the paper draft on top of finished results (what `make paper` costs after `make reproduce`).

Run: .venv/bin/python benchmarks/bench_draft.py [--profile embedded] [--repeat 3] [--out DIR]
Reads results/ and figures/ (or $STUDY_RESULTS_DIR / $STUDY_FIGURES_DIR), builds into a temporary folder unless
--out is given, and prints the median build time (generation + latexmk, cold: a fresh build folder each time),
the page count and the PDF size; the figures go into the README (section "The paper draft").
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from study import config  # noqa: E402
from study.draft import document


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            result = document.build(config.get_profile(args.profile), out=args.out or Path(tmp) / f"build{i}")
            times.append(result.seconds)
            print(f"run {i + 1}: {result.seconds:.1f} s")
        pages = document.pdf_pages(result.pdf)
        size_kb = result.pdf.stat().st_size / 1024
    print(f"draft ({args.profile or 'default profile'}): median {statistics.median(times):.1f} s, {pages} pages, "
          f"{size_kb:.0f} KB, {len(result.used)} floats, {len(result.unused)} unused artefacts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
