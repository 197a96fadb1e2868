"""The paper draft's page (paper/draft.tex: A4, 10 pt, 2.2 cm margins): one home for the sizes that figures are drawn
for (study.plots) and placed at (study.draft.document)."""
from __future__ import annotations

CM_PER_IN = 2.54
TEXT_WIDTH_IN = (21.0 - 2 * 2.2) / CM_PER_IN
TEXT_HEIGHT_IN = (29.7 - 2 * 2.2) / CM_PER_IN
FIGURE_MAX_HEIGHT_FRACTION = 0.42  # of \textheight: two figures and their captions fit a page
FIGURE_MAX_HEIGHT_IN = FIGURE_MAX_HEIGHT_FRACTION * TEXT_HEIGHT_IN
MIN_PRINTED_PT = 7.0  # no text of a figure prints smaller
