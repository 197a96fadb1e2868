"""The decision's deployment criterion: only members that stay faithful in a deployment format are candidates.

    python -m study decide ... --deploy-format litert_dynamic_int8 --min-agreement 0.99 --fidelity FILE

FILE is the per-member fidelity table (`python -m study deploy --sweep DIR --csv FILE`, `study.deployment.fidelity`).
A member is deployable in FORMAT when that format ran (no crash) and its top-1 agreement with the original on the
test split is at least `--min-agreement`; at the default 1.0 the row must be `faithful` under the one rule
(`study.deployment.faithful`: outputs within K x the reference's own noise floor; the table's `status`). With
`--fixed-tolerance` the paper-comparable fixed gate judges instead (`status_fixed`). A table made before the one rule
(#36) has `calibrated_status` and a fixed-gate `status`: read as such. The other members leave both tables before the
priority is applied, so every
"uses less ... than N models" then counts among the deployable members; the evidence gains the chosen member's
size and latency in FORMAT.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from study.errors import StudyError

RAN = ("faithful", "wrong_output", "accuracy_drop")  # statuses of a format that converted, loaded and ran
NEEDED = ("member", "format", "status", "top1_agreement", "size_mb", "latency_p50_ms")


@dataclass(frozen=True)
class DeployCriterion:
    format: str
    min_agreement: float = 1.0
    fixed: bool = False  # judge "faithful" at the paper-comparable fixed gate (`status_fixed`), not the one rule

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_agreement <= 1.0:
            raise StudyError(f"--min-agreement {self.min_agreement} is outside [0, 1]; give top-1 agreement as a fraction")

    @property
    def text(self) -> str:
        text = (f"faithful in {self.format}" if self.min_agreement >= 1.0
                else f"{self.format} top-1 agreement >= {self.min_agreement:g}")
        return f"{text} (fixed gate)" if self.fixed else text


def load_fidelity(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A per-member fidelity table (CSV or frame), validated."""
    if isinstance(source, pd.DataFrame):
        df, where = source.copy(), "the fidelity table"
    else:
        path = Path(source)
        if not path.is_file():
            raise StudyError(f"fidelity table {path} does not exist; make it with "
                             "`python -m study deploy --sweep DIR --csv FILE`")
        df, where = pd.read_csv(path), str(path)
    missing = [c for c in NEEDED if c not in df.columns]
    if missing:
        raise StudyError(f"{where} lacks column(s) {', '.join(missing)}; pass the table `deploy --sweep` wrote")
    return df


def verdict_column(rows: pd.DataFrame, fixed: bool = False) -> pd.Series:
    """The rows' verdict under the one rule (`status`), or at the fixed gate (`status_fixed`); a table made before
    the one rule keeps its rule verdict in `calibrated_status` and its fixed-gate verdict in `status`."""
    old = "status_fixed" not in rows.columns and "calibrated_status" in rows.columns
    if fixed:
        if old or "status_fixed" not in rows.columns:
            return rows["status"]  # before the one rule, `status` was the fixed gate's
        return rows["status_fixed"]
    if old:
        return rows["calibrated_status"].where(rows["calibrated_status"].fillna("").astype(str).ne(""), rows["status"])
    return rows["status"]


def deployable(fidelity: str | Path | pd.DataFrame, criterion: DeployCriterion) -> pd.DataFrame:
    """One row per member measured in the criterion's format: its agreement, size, latency and `deployable`."""
    df = load_fidelity(fidelity)
    rows = df[df["format"] == criterion.format]
    if rows.empty:
        raise StudyError(f"the fidelity table has no row for format {criterion.format!r}; measured formats: "
                         f"{', '.join(sorted(df['format'].unique()))}")
    rows = rows.drop_duplicates("member", keep="last")
    status = verdict_column(rows, criterion.fixed)
    agreement = pd.to_numeric(rows["top1_agreement"], errors="coerce")
    ok = status.isin(RAN) & (agreement >= criterion.min_agreement)
    if criterion.min_agreement >= 1.0:
        ok &= status.eq("faithful")
    return pd.DataFrame({"model": rows["member"].to_numpy(), "deploy_format": criterion.format,
                         "deploy_status": status.to_numpy(), "deploy_agreement": agreement.to_numpy(),
                         "deploy_size_mb": rows["size_mb"].to_numpy(),
                         "deploy_latency_ms": rows["latency_p50_ms"].to_numpy(), "deployable": ok.to_numpy()})


def restrict(tables, fidelity: str | Path | pd.DataFrame, criterion: DeployCriterion):
    """`tables` (choice.CaseStudyTables) with only the members deployable under `criterion`; and their rows."""
    info = deployable(fidelity, criterion)
    keep = set(info.loc[info["deployable"], "model"])
    if not keep & set(tables.models):
        raise StudyError(f"no member of the tables is {criterion.text} (deployable: {', '.join(sorted(keep)) or 'none'}; "
                         f"members: {', '.join(tables.models)}); lower --min-agreement or choose another --deploy-format")

    def narrow(df: pd.DataFrame | None) -> pd.DataFrame | None:
        if df is None:
            return None
        out = df[df["model"].isin(keep)].reset_index(drop=True)
        out.attrs = dict(df.attrs)
        return out

    label = f"{tables.label}, {criterion.text}"
    return dataclasses.replace(tables, ix=narrow(tables.ix), x=narrow(tables.x), label=label), info


def apply(tables, deploy_format: str | None = None, fidelity: str | Path | pd.DataFrame | None = None,
          min_agreement: float = 1.0, fixed: bool = False):
    """(tables narrowed by the criterion, its per-member rows) or (tables, None) without a `deploy_format`."""
    if not deploy_format:
        if fidelity is not None:
            raise StudyError("--fidelity without --deploy-format: name the format the member must stay faithful in")
        return tables, None
    if fidelity is None:
        raise StudyError("--deploy-format needs --fidelity FILE (make it with `python -m study deploy --sweep DIR --csv FILE`)")
    return restrict(tables, fidelity, DeployCriterion(deploy_format, min_agreement, fixed))


def annotate(evidence: pd.DataFrame, info: pd.DataFrame | None) -> pd.DataFrame:
    """The evidence table with the deployment format's size / latency / agreement of each row's model."""
    if info is None or "model" not in evidence.columns:
        return evidence
    return evidence.merge(info.drop(columns="deployable"), on="model", how="left")
