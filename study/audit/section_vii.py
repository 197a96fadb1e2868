"""The paper audit, Section VII (Tables IX-XI): the case study's claims re-derived from its tables (the split,
the 38 assets, the chosen models), among them the VII-G count claims ('uses less X than N (p%) models',
`COUNT_CLAIMS`, under each tie rule) and what each printed accuracy implies about the test images a member
inferred (`inferred_images`). Its rows are `study.audit.rows._row`s; `study.audit.sections` runs it with the other sections.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import pandas as pd

from study import paper
from study.audit.rows import TEXT, _decimals, _pct, _row, _yes_no, around
from study.decision import choice

BEST, FOURTH = paper.CHOICE_BEST_PERFORMING, paper.CHOICE_MOST_SUITABLE
TIE_NAMES = {"strict": "strictly less", "or_equal": "less or equal"}
IC_IFV_SPLIT = re.compile(r"(\d+) \(IC\), (\d+) \(IFV\)")  # Table I's members text when it splits IC / IFV


def feature_vector_count(families: pd.DataFrame, more_than: int) -> tuple[str, str, str]:
    """'more than `more_than` Image Feature Vector assets' from Table I-shaped rows of the IC & IFV domain:
    (derived value, verdict, reason). A family whose members text splits IC / IFV counts exactly; the others give
    only bounds (0 to all their members): yes when even the lower bound exceeds the claim, no when the upper
    bound does not, else not derivable."""
    split = {r.algorithm: tuple(map(int, m.groups())) for r in families.itertuples()
             if (m := IC_IFV_SPLIT.search(str(r.members_text)))}
    lower = sum(ifv for _, ifv in split.values())
    upper = lower + int(families.loc[~families["algorithm"].isin(split), "members"].sum())
    derived = f"{lower}" if lower == upper else f"{lower} to {upper}"
    splits = ", ".join(f"{a} ({ic} IC, {ifv} IFV)" for a, (ic, ifv) in split.items()) or "none"
    reason = (f"Table I splits IC / IFV members for {len(split)} of {len(families)} families ({splits}); the rest "
              f"count both together, so the IFV assets are between {lower} and {upper}")
    if lower > more_than:
        return derived, "yes", reason
    if upper <= more_than:
        return derived, "no", reason
    return "", "not derivable", reason  # the bounds are in the reason


@dataclass(frozen=True)
class CountClaim:
    """'uses less X than N (p%) models', as printed in Section VII-G."""

    claim_id: str
    section: str
    quote: str
    model: str
    resource: str  # choice.Resource key
    n: int
    percent: str
    note: str = ""


COUNT_CLAIMS: tuple[CountClaim, ...] = (
    CountClaim("VII-G.1.best.ix_cpu", "VII-G.1", "use less CPU than 14 (36.84%)", BEST, "ix.delta_cpu", 14, "36.84%"),
    CountClaim("VII-G.1.best.ix_mem", "VII-G.1", "less memory than 9 (23.68%)", BEST, "ix.delta_mem", 9, "23.68%"),
    CountClaim("VII-G.1.best.ix_elapse", "VII-G.1", "less training time elapse than 10 (26.32%) models", BEST, "ix.elapse", 10, "26.32%"),
    CountClaim("VII-G.2.best.x_cpu", "VII-G.2", "use less CPU usage than 2 (5.26%) models", BEST, "x.cpu", 2, "5.26%"),
    CountClaim("VII-G.2.best.x_memory", "VII-G.2", "less memory usage than 8 (21.05%) models", BEST, "x.memory", 8, "21.05%"),
    CountClaim("VII-G.2.best.x_gpu", "VII-G.2", "less GPU usage than 9 (23.68%)", BEST, "x.gpu", 9, "23.68%"),
    CountClaim("VII-G.2.best.x_gpu_memory", "VII-G.2", "less GPU memory usage than 13 (34.21%)", BEST, "x.gpu_memory", 13, "34.21%"),
    CountClaim("VII-G.2.best.x_elapse", "VII-G.2", "less fine-tuning time elapse than 16 (42.11%) models", BEST, "x.elapse", 16, "42.11%",
               "the paper says 'fine-tuning' but lists it with the testing results (VII-G.1 gives the fine-tuning "
               "elapse as 10); read as Table X's elapse"),
    CountClaim("VII-G.2.fourth.x_cpu", "VII-G.2", "the previous results are 3 (7.89%)", FOURTH, "x.cpu", 3, "7.89%"),
    CountClaim("VII-G.2.fourth.x_memory", "VII-G.2", "19 (50.00%)", FOURTH, "x.memory", 19, "50.00%"),
    CountClaim("VII-G.2.fourth.x_gpu", "VII-G.2", "21 (55.26%)", FOURTH, "x.gpu", 21, "55.26%"),
    CountClaim("VII-G.2.fourth.x_gpu_memory", "VII-G.2", "23 (60.53%)", FOURTH, "x.gpu_memory", 23, "60.53%"),
    CountClaim("VII-G.2.fourth.x_elapse", "VII-G.2", "18 (47.37%)", FOURTH, "x.elapse", 18, "47.37%"),
    CountClaim("VII-G.2.fourth.ix_cpu", "VII-G.2", "the stats result is 13 (34.21%)", FOURTH, "ix.delta_cpu", 13, "34.21%"),
    CountClaim("VII-G.2.fourth.ix_mem", "VII-G.2", "6 (15.79%)", FOURTH, "ix.delta_mem", 6, "15.79%"),
    CountClaim("VII-G.2.fourth.ix_elapse", "VII-G.2", "8 (21.05%)", FOURTH, "ix.elapse", 8, "21.05%"),
)


def _count_rows(tables: choice.CaseStudyTables, c: CountClaim) -> Iterator[dict]:
    values = tables.values()[c.resource]
    by_rule = {rule: choice.uses_less_than(values, c.model, tie_rule=rule) for rule in choice.TIE_RULES}
    others = choice.uses_less_than(values, c.model, denominator="others")
    strict = by_rule["strict"]
    ties = strict.ties
    what = f"{c.model}, {c.resource}"
    shown = paper.format_elapse(values[c.model]) if c.resource.endswith("elapse") else f"{values[c.model]:g}"
    base_note = f"{what} = {shown}; " + (f"{ties} other member(s) print the same value; " if ties else "no ties; ")

    def verdict(get) -> tuple[str, str, str]:
        got = {rule: get(v) for rule, v in by_rule.items()}
        if len(set(got.values())) == 1:
            only = next(iter(got.values()))
            return str(only[0]), ("yes" if only[1] else "no"), ""
        derived = " / ".join(f"{g[0]} ({TIE_NAMES[r]})" for r, g in got.items())
        held = [r for r, g in got.items() if g[1]]
        if held:
            return derived, "conditional", f"holds only under the tie rule '{TIE_NAMES[held[0]]}'"
        return derived, "no", "holds under neither tie rule"

    d, v, extra = verdict(lambda lt: (lt.n, lt.n == c.n))
    if v == "no" and by_rule["strict"].n < c.n < by_rule["or_equal"].n:
        extra += f"; the paper's {c.n} lies between them: it needs times finer than the table prints"
    yield _row(f"{c.claim_id}.count", c.section, f'"{c.quote}" ({what}: count)', c.n, d, v,
               "; ".join(p for p in (base_note.rstrip("; "), extra.lstrip("; "), c.note) if p))
    dec = _decimals(c.percent)
    paper_pct = float(c.percent.rstrip("%"))
    d, v, extra = verdict(lambda lt: (_pct(lt.percent, dec), math.isclose(round(lt.percent, dec), paper_pct, abs_tol=1e-9)))
    own = 100 * c.n / strict.n_models
    consistency = (f"the paper's {c.n}/{strict.n_models} = {_pct(own, dec)}" +
                   (" (consistent)" if math.isclose(round(own, dec), paper_pct, abs_tol=1e-9)
                    else " (inconsistent with its count)"))
    yield _row(f"{c.claim_id}.percent", c.section, f'"{c.quote}" ({what}: percent)', c.percent, d, v,
               f"percent of all {strict.n_models} members (of the {others.n_models - 1} others it would be "
               f"{_pct(others.percent, dec)}); {consistency}" + (f"; {extra}" if extra else ""))


def _fraction(acc: float, limit: int) -> tuple[int, int, list[int]]:
    """The fraction k/n (n <= limit) a printed accuracy is, and every n <= limit it is consistent with."""
    f = Fraction(acc).limit_denominator(limit)
    if abs(f.numerator / f.denominator - acc) > 1e-12:
        return -1, -1, []
    return f.numerator, f.denominator, list(range(f.denominator, limit + 1, f.denominator))


def inferred_images(tables: choice.CaseStudyTables | None = None) -> pd.DataFrame:
    """Per member, what its Table X accuracy implies: correct/inferred images, and whether all test images were inferred.

    Accuracy is "correctly classified number divided by total inferred image number" (VII-F), so a printed
    accuracy is a fraction k/n; a run that inferred all of Table XI's test images has n = their total.
    """
    tables = tables or choice.CaseStudyTables.paper()
    total = int(paper.flower_split()["testing"].sum())
    x = tables.x.set_index("model")
    rows = []
    for model, r in x.iterrows():
        k, n, ns = _fraction(r["accuracy"], total)
        complete = total in ns
        rows.append({"model": model, "accuracy": r["accuracy"], "correct": k * (total // n) if complete else k,
                     "inferred": total if complete else max(ns) if ns else None, "smallest_n": n,
                     "consistent_n": ", ".join(map(str, ns)), "all_test_images": complete,
                     "elapse": r["elapse_hms"], "test_images": total})
    return pd.DataFrame(rows)


def section_vii() -> Iterator[dict]:
    tables = choice.CaseStudyTables.paper()
    ix, x, split = tables.ix, tables.x, paper.flower_split()
    wide = tables.values()
    labels = split["label"].tolist()
    yield _row("VII-A.classes", "VII-A", '"daisy, dandelion, roses, sunflowers and tulips"', 5,
               f"{len(labels)} ({', '.join(labels)})",
               _yes_no(labels == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]), "Table XI rows")
    # Table XI
    for r in split.itertuples():
        parts = r.training + r.validation + r.testing
        yield _row(f"VII-B.table_xi.{r.label}", "VII-B (Table XI)", f"Table XI, {r.label}: # Total {r.total}",
                   r.total, parts, _yes_no(parts == r.total), f"{r.training} + {r.validation} + {r.testing}")
    test_share = round(split["testing"].sum() / split["total"].sum(), 2)
    rest = split["total"] - split["testing"]
    val_share = round(split["validation"].sum() / rest.sum(), 2)
    floor_ok = ((split["testing"] == (test_share * split["total"]).map(math.floor))
                & (split["validation"] == (val_share * rest).map(math.floor))).all()
    tests, vals = 100 * split["testing"] / split["total"], 100 * split["validation"] / rest
    yield _row("VII-B.table_xi.split", "VII-B (Table XI)",
               "Table XI: one split for every class (proportions not stated in the text)", "(implied)",
               f"testing {_pct(tests.min())}-{_pct(tests.max())} of each class; "
               f"validation {_pct(vals.min())}-{_pct(vals.max())} of the rest; "
               f"totals {split['training'].sum()}/{split['validation'].sum()}/{split['testing'].sum()}/{split['total'].sum()}",
               _yes_no(floor_ok),
               f"every class: testing = floor({test_share:g} x total), validation = floor({val_share:g} x (total - testing))")
    # VII-C
    fam = paper.families().set_index("algorithm")
    v1 = fam.loc["MobileNet V1"]
    v1_float = v1["members"] // 2 if "Quantized or Not" in v1["config"] else v1["members"]
    from_table_i = int(v1_float + fam.loc["MobileNet V2", "members"])
    yield _row("VII-C.38", "VII-C", '"there are 38 MobileNet assets to be tried"', 38,
               f"{len(ix)} rows in Table IX, {len(x)} in Table X; "
               f"Table I: {v1['members']}/2 + {fam.loc['MobileNet V2', 'members']} = {from_table_i}",
               _yes_no(len(ix) == len(x) == from_table_i == 38),
               "Table I MobileNet V1 without its quantized half ('Quantized or Not') plus MobileNet V2")
    minutes = TEXT["resnet_epoch_minutes"].value
    verdict, why = around(minutes, 30, precision=30)  # "around half an hour": to the nearest half hour
    yield _row("VII-C.resnet_epoch", "VII-C", '"training an ResNet V1 model for one epoch takes around half an hour"',
               "around 30 min", f"{minutes:g} min (Section VI-C)", verdict,
               f'against VI-C "{TEXT["resnet_epoch_minutes"].quote}": {why}')
    aihub = paper.families("AIHub")
    derived, verdict, why = feature_vector_count(aihub[aihub["domain"].str.contains("Image Feature Vector")], 60)
    yield _row("VII-C.60", "VII-C", '"there are more than 60 Image Featuring Vector assets to be tried"', "> 60",
               derived, verdict, why)
    # VII-E/G: m
    m = (TEXT["process_periods"].value - 1) * TEXT["cool_down_samples"].value
    yield _row("VII-G.m", "VII-E/G", '"In our case study, $m = 12$"', 12, f"{m:g}", _yes_no(m == 12),
               f'2 cool-down periods ("{TEXT["process_periods"].quote}": cool-down, running, cool-down) x '
               f'"{TEXT["cool_down_samples"].quote}"; one period alone would be 6')
    # VII-F/G: what each accuracy implies, and the stuck runs
    inf = inferred_images(tables)
    printed = pd.read_csv(paper.table_path("X"), dtype=str).set_index("model")["accuracy"]
    for r in inf.itertuples():
        derived = (f"{r.correct}/{r.inferred}" if r.all_test_images else
                   f"{r.correct * r.inferred // r.smallest_n}/{r.inferred}" if r.inferred else "not a fraction of <= 364")
        yield _row(f"VII-F.images.{r.model}", "VII-F/G (Tables X, XI)",
                   f"{r.model}: accuracy = correctly classified / inferred images, over the {r.test_images} test images of Table XI",
                   printed.get(r.model, f"{r.accuracy!r}"), derived, _yes_no(r.all_test_images),
                   (f"consistent with inferring all {r.test_images}" if r.all_test_images else
                    f"not k/{r.test_images}: at most {r.inferred} images inferred (a stuck run, elapse {r.elapse})")
                   + (f"; also with n in {{{r.consistent_n}}}" if r.consistent_n.count(",") else ""))
    stuck = inf[~inf["all_test_images"]]
    yield _row("VII-G.stuck", "VII-G", '"there are 5 simple products cannot infer all of the test images"', 5,
               f"{len(stuck)} ({', '.join(stuck['model'])})", _yes_no(len(stuck) == 5),
               f"accuracies that are not k/{int(inf['test_images'].iloc[0])} (VII-F.images.*); the paper does not name its 5")
    same = (ix.set_index("model")["accuracy"] == x.set_index("model")["accuracy"].reindex(ix["model"]))
    yield _row("VII-G.same_accuracy", "VII-E/F (Tables IX, X)",
               "Table IX (fine-tuning) and Table X (testing) report one accuracy per model", "(implied)",
               f"identical in {same.sum()} of {len(same)} rows", _yes_no(same.all()),
               "Table IX's accuracy is the browser test accuracy, so it inherits the partial runs of VII-G.stuck")
    # VII-G.1
    acc = wide["x.accuracy"]
    ranked = acc.sort_values(ascending=False, kind="stable")
    best = ranked.index[0]
    yield _row("VII-G.1.best", "VII-G.1", '"we select the best performing model"', BEST, best,
               _yes_no(best == BEST and ranked.iloc[1] < ranked.iloc[0]), f"highest accuracy, {ranked.iloc[0]:.4f}")
    yield _row("VII-G.1.best_66", "VII-G.1", '"whose top 1 accuracy is 66%"', "66%", _pct(100 * acc[BEST], 2),
               _yes_no(round(100 * acc[BEST]) == 66), "printed to whole percent")
    for c in COUNT_CLAIMS[:3]:
        yield from _count_rows(tables, c)
    train = [r for r in tables.resources() if r.phase == "training"]
    heaviest = {r.key: wide[r.key].idxmax() for r in train}
    yield _row("VII-G.1.not_heaviest", "VII-G.1", '"it is not the most resource consuming one"',
               f"{BEST} is not the heaviest", "heaviest: " + ", ".join(f"{k} {m}" for k, m in heaviest.items()),
               _yes_no(BEST not in heaviest.values()), "Table IX resources")
    sel = choice.select(tables, choice.PAPER_PRIORITIES["VII-G.1 fine-tuning machine not resource critical: best performing"])
    yield _row("VII-G.1.decision", "VII-G.1", '"If a machine used for fine-tuning is not resource critical"', BEST, sel.model,
               _yes_no(sel.model == BEST), "decision.select(max:accuracy)")
    # VII-G.2
    for c in COUNT_CLAIMS[3:8]:
        yield from _count_rows(tables, c)
    infer = [r for r in tables.resources() if r.phase == "inference"]
    heaviest = {r.key: wide.index[wide[r.key] == wide[r.key].max()].tolist() for r in infer}
    yield _row("VII-G.2.not_heaviest", "VII-G.2", '"So the best performing model is not the most resource consuming one"',
               f"{BEST} is not the heaviest", "heaviest: " + ", ".join(f"{k} {'/'.join(m)}" for k, m in heaviest.items()),
               _yes_no(all(BEST not in m for m in heaviest.values())), "Table X resources")
    rank_max = acc.rank(ascending=False, method="max")[FOURTH]
    rank_min = acc.rank(ascending=False, method="min")[FOURTH]
    ordinal = list(ranked.index).index(FOURTH) + 1
    tied = acc.index[(acc == acc[FOURTH]) & (acc.index != FOURTH)].tolist()
    yield _row("VII-G.2.fourth", "VII-G.2", '"we select the 4th best performance model"', f"{FOURTH}: 4th",
               f"rank {rank_min:.0f}-{rank_max:.0f} (tied with {', '.join(tied)})" if tied else f"rank {ordinal}",
               "yes" if rank_min == rank_max == 4 else "conditional" if rank_min <= 4 <= rank_max else "no",
               f"accuracy {acc[FOURTH]:.4f} equals {', '.join(tied)}'s: 4th only if the tie is broken by table order "
               f"(stable sort puts it {ordinal}th) or ties take their lowest rank" if tied else "")
    above = acc[acc > 0.62]
    lowest = above.index[above == above.min()].tolist()
    yield _row("VII-G.2.worst_above_62", "VII-G.2", '"the worst performance one among models whose performance is better than 62%"',
               FOURTH, f"{len(above)} models > 62%; lowest {above.min():.4f}: {', '.join(lowest)}",
               "yes" if lowest == [FOURTH] else "conditional" if FOURTH in lowest else "no",
               "holds only with the tie broken in its favour: the lowest accuracy above 62% is shared with "
               + ", ".join(m for m in lowest if m != FOURTH) if len(lowest) > 1 else "")
    for c in COUNT_CLAIMS[8:13]:
        yield from _count_rows(tables, c)
    better = {r.key: (choice.uses_less_than(wide[r.key], FOURTH).n, choice.uses_less_than(wide[r.key], BEST).n)
              for r in infer}
    wins = [k for k, (a, b) in better.items() if a > b]
    even = [k for k, (a, b) in better.items() if a == b]
    yield _row("VII-G.2.more_acceptable", "VII-G.2", '"The resources usages are much more acceptable"',
               f"{FOURTH} lighter than {BEST} at inference",
               f"lighter on {len(wins)} of {len(infer)} resources" + (f"; equal on {', '.join(even)}" if even else ""),
               "yes" if len(wins) == len(infer) else "conditional" if wins and not set(better) - set(wins) - set(even) else "no",
               ("holds only where the printed values differ; " if even else "") + "counts under the strict tie rule: "
               + ", ".join(f"{k}: {a} vs {b}" for k, (a, b) in better.items())
               + ("; both print elapse 0:00:08" if "x.elapse" in even else ""))
    for c in COUNT_CLAIMS[13:]:
        yield from _count_rows(tables, c)
    heavier = [r.key for r in train if wide.loc[FOURTH, r.key] > wide.loc[BEST, r.key]]
    yield _row("VII-G.2.demands_more", "VII-G.2", '"which demands more than"', f"{FOURTH} heavier in training",
               f"heavier on {len(heavier)} of {len(train)} Table IX resources", _yes_no(len(heavier) == len(train)),
               ", ".join(f"{r.key}: {wide.loc[FOURTH, r.key]:g} vs {wide.loc[BEST, r.key]:g}" for r in train))
    # VII-I
    name = "VII-I inference resources first, then performance (> 62 %)"
    sel = choice.select(tables, choice.PAPER_PRIORITIES[name])
    dom = choice.dominators(tables, FOURTH)
    cols = ["x.accuracy"] + [r.key for r in tables.resources()]
    sign = pd.Series({k: -1 if k.endswith("accuracy") else 1 for k in cols})
    strictly = "; ".join(
        f"{m}: " + ("better on accuracy and every Table IX and X resource"
                    if ((wide.loc[m, cols] - wide.loc[FOURTH, cols]) * sign < 0).all()
                    else "at least as good on accuracy and every resource, better on some")
        for m in dom)
    yield _row("VII-I.decision", "VII-I (and VII-G.2)", '"The most suitable model is mobilenet_v2_075_192"', FOURTH, sel.model,
               _yes_no(sel.model == FOURTH),
               f"decision.select({' > '.join(choice.PAPER_PRIORITIES[name])}); "
               + (f"{FOURTH} is dominated by {', '.join(dom)} ({strictly}): no priority order over these "
                  "columns picks it" if dom else f"{FOURTH} is not dominated"))
    # VII-H
    ix_row = ix.set_index("model").loc[FOURTH]
    yield _row("VII-H.elapse", "VII-H", '"fine-tuning time elapse is 10m 46s"', "0:10:46", ix_row["elapse_hms"],
               _yes_no(ix_row["elapse"] == 10 * 60 + 46), f"Table IX, {FOURTH}")
    notes = paper.version_notes()
    for cat, version, quote in (("update_ops", 2, "Version 2 release note of mobilenet_v2_075_192 is Fixed broken UPDATE_OPS"),
                                ("batch_norm_momentum", 3, "Version 3 release note is Fine-tuning: change default batch norm momentum")):
        hit = notes[(notes["note_category"] == cat) & (notes["algorithm"] == "MobileNet V2")]["version"].tolist()
        yield _row(f"VII-H.v{version}", "VII-H", f'"{quote}"', f"V{version}", ", ".join(f"V{v}" for v in hit) or "none",
                   _yes_no(hit == [version]), "Table VIII, MobileNet V2")


def count_claims_table(tables: choice.CaseStudyTables | None = None) -> pd.DataFrame:
    """Section VII-G's "N (p%)" counts beside the counts `tables` give under each tie rule (default: the paper's)."""
    tables = tables or choice.CaseStudyTables.paper()
    wide = tables.values()
    rows = []
    for c in COUNT_CLAIMS:
        got = {rule: choice.uses_less_than(wide[c.resource], c.model, tie_rule=rule) for rule in choice.TIE_RULES}
        held = [TIE_NAMES[r] for r, lt in got.items() if lt.n == c.n]
        rows.append({"claim_id": c.claim_id, "model": c.model, "resource": c.resource, "paper": f"{c.n} ({c.percent})",
                     **{TIE_NAMES[r]: f"{lt.n} ({lt.percent:.2f}%)" for r, lt in got.items()},
                     "ties": got["strict"].ties,
                     "holds_under": "neither" if not held else "both" if len(held) == len(got) else held[0]})
    return pd.DataFrame(rows)
