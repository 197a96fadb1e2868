"""The study's findings at a glance: per research question and case-study part, the paper's headline claim, what we
derive, the verdict, its noise label and where to look; with how many of the part's claims reproduce.

Built from the audit (`study.audit.sections.audit`, with `study.audit.noise_labels.label`'s `noise` column), so every cell is
computed; which claim heads each part is typed data (`PARTS`), with the draft's section and float to look at.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from study.errors import StudyError


@dataclass(frozen=True)
class Part:
    """One part of the study: its name, the audit sections it covers (prefixes of `claim_id`), its headline claim
    and where the draft shows it."""

    name: str
    prefixes: tuple[str, ...]
    headline: str
    where: str


PARTS: tuple[Part, ...] = (
    Part("RQ1 deployment scenarios (Tables IV-V)", ("IV.",), "IV.more_scenarios", "Section RQ1; notebooks 01, 09"),
    Part("RQ2 families (Tables I-III)", ("III-B.", "V."), "V.families_aihub", "Section RQ2; notebook 02"),
    Part("RQ3 versions (Tables VI-VIII)", ("VI.", "VII-H."), "VI.most_versions", "Section RQ3; notebooks 03, 08"),
    Part("Case study data (Table XI)", ("VII-A.", "VII-B.", "VII-C."), "VII-B.table_xi.split",
         "Section Case study; notebook 04"),
    Part("Fine-tuning and browser test (Tables IX-X)", ("VII-E", "VII-F.", "VII-G.stuck", "VII-G.same", "VII-G.m"),
         "VII-G.stuck", "Section Case study; notebooks 04, 05"),
    Part("The decision (VII-G, VII-I)", ("VII-G.1", "VII-G.2", "VII-I."), "VII-I.decision",
         "Section Case study, the decision; notebook 06"),
)
COLUMNS = ["part", "paper_claim", "ours", "verdict", "noise", "claims_reproduced", "where"]


def at_a_glance(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per `PARTS` entry from the audit's `claims` (claim_id, statement, derived_value, reproduced, and
    `noise` when labelled): the headline claim and its verdict, and 'k of n' claims of the part that reproduce."""
    missing = [p.headline for p in PARTS if p.headline not in set(claims["claim_id"])]
    if missing:
        raise StudyError(f"the audit has no claim {', '.join(missing)}: study.audit.findings.PARTS names claims that "
                         "study.audit.sections no longer makes; update PARTS")
    rows = []
    by_id = claims.set_index("claim_id")
    for part in PARTS:
        mine = claims[claims["claim_id"].str.startswith(part.prefixes)]
        head = by_id.loc[part.headline]
        noise = str(head.get("noise", "") or "") if "noise" in claims else ""
        rows.append({"part": part.name, "paper_claim": head["statement"],
                     "ours": head["derived_value"] if str(head["derived_value"]) not in ("", "nan") else head["note"],
                     "verdict": head["reproduced"], "noise": noise or "--",
                     "claims_reproduced": f"{int((mine['reproduced'] == 'yes').sum())} of {len(mine)}",
                     "where": part.where})
    return pd.DataFrame(rows, columns=COLUMNS)
