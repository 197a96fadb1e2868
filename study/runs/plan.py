"""The study's wall time on N nodes, planned from measured task costs: `python -m study plan --profile paper --nodes N`.

The arithmetic only, on plain numbers (`study.runs.task_costs` reads them from a measured run and scales them to a
profile). A notebook is a serial part (everything its run did outside the tasks below: imports, tables, figures,
the analysis; it never spreads) and task kinds run one after the other. A task kind is `units` equal tasks of
`unit_s` each, the sum of its parts; a part is a measured cost times the factors by which the planned profile
changes it, each with its assumption. On `nodes` nodes of `cores` cores:

- a task that **holds a whole node** (a measured task: a sweep run, a browser run, a latency measurement: clean
  Formula 1 deltas and latencies) runs one per node: `ceil(units / nodes)` waves;
- a task that **packs by CPUs** (nothing measured while it runs) takes `cpus` cores:
  `ceil(units / (nodes * (cores // cpus)))` waves;
- a task that runs **on the driver** (the fidelity sweep's localisation, after every member is measured) runs one
  after the other whatever the nodes: `units` waves.

Waves of equal tasks: the model knows each kind's mean cost, not each task's, so a wave's length is the mean.
Notebooks run in order (`make reproduce`), so the total is their sum: the notebooks without tasks, and every
serial part, are the Amdahl part that more nodes never shorten.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from study.errors import StudyError
from study.paper import format_elapse


@dataclass(frozen=True)
class Factor:
    """How much the planned profile changes one part's measured cost (planned / measured), and why."""

    name: str  # "epochs", "images", "cool-downs", ...
    value: float
    assumption: str  # what the factor takes for granted, in words (the measured and the planned values)


@dataclass(frozen=True)
class Part:
    """One part of a task's cost: its measured mean seconds and the factors that scale it to the planned profile."""

    name: str
    measured_s: float
    factors: tuple[Factor, ...] = ()

    @property
    def planned_s(self) -> float:
        return self.measured_s * math.prod(f.value for f in self.factors)


@dataclass(frozen=True)
class TaskKind:
    """`units` equal tasks of one kind in a notebook (`measured_units` of them ran in the measured run)."""

    notebook: str
    name: str
    parts: tuple[Part, ...]
    units: int  # in the planned profile
    measured_units: int
    holds_node: bool  # True: one per node (a measured task); False: packs by CPUs
    cpus: int = 1  # cores a packable task takes
    units_assumption: str = ""  # where `units` comes from
    on_driver: bool = False  # True: one after the other on the driver, whatever the nodes

    @property
    def measured_unit_s(self) -> float:
        return sum(p.measured_s for p in self.parts)

    @property
    def unit_s(self) -> float:
        """One task's planned cost (s)."""
        return sum(p.planned_s for p in self.parts)

    def slots(self, nodes: int, cores: int) -> int:
        """Tasks of this kind that run at once on `nodes` nodes of `cores` cores."""
        if self.on_driver:
            return 1
        return nodes if self.holds_node else nodes * max(1, cores // self.cpus)

    def wall_s(self, nodes: int, cores: int) -> float:
        if self.units <= 0:
            return 0.0
        return math.ceil(self.units / self.slots(nodes, cores)) * self.unit_s


@dataclass(frozen=True)
class NotebookPlan:
    """One notebook: its measured wall time, the serial part of it, and its task kinds."""

    notebook: str
    measured_s: float
    serial_s: float  # the measured time outside its tasks; unscaled
    tasks: tuple[TaskKind, ...] = ()

    def wall_s(self, nodes: int, cores: int) -> float:
        return self.serial_s + sum(t.wall_s(nodes, cores) for t in self.tasks)


def serial_part(measured_s: float, tasks_s: float) -> float:
    """What a notebook's measured run spent outside its tasks (`tasks_s`: every task it ran, one after the other,
    also those of a kind the planned profile drops), >= 0."""
    return max(0.0, measured_s - tasks_s)


@dataclass(frozen=True)
class Plan:
    """The planned profile's notebooks on a cluster of nodes of `cores` cores, and where the costs came from."""

    profile: str  # planned
    measured_profile: str
    cores: int  # per node
    notebooks: tuple[NotebookPlan, ...]
    source: dict[str, str] = field(default_factory=dict)  # the measured run: results folder, date, commit, host

    def wall_s(self, nodes: int) -> float:
        check_nodes([nodes])
        return sum(nb.wall_s(nodes, self.cores) for nb in self.notebooks)

    def serial_s(self) -> float:
        """The part no number of nodes shortens."""
        return sum(nb.serial_s for nb in self.notebooks)

    @property
    def tasks(self) -> tuple[TaskKind, ...]:
        return tuple(t for nb in self.notebooks for t in nb.tasks)


def check_nodes(nodes: list[int]) -> None:
    bad = [n for n in nodes if n < 1]
    if bad or not nodes:
        raise StudyError(f"plan: --nodes takes whole numbers >= 1 (got {', '.join(map(str, bad)) or 'none'}), "
                         "e.g. --nodes 1 2 4 8")


def _hms(seconds: float) -> str:
    return format_elapse(seconds)


def table_rows(plan: Plan, nodes: list[int]) -> list[list[str]]:
    """[header, one row per notebook, total]: the measured time, then the planned time on each node count."""
    check_nodes(nodes)
    header = ["notebook", f"measured ({plan.measured_profile})"] + [
        f"{n} node" + ("" if n == 1 else "s") for n in nodes]
    rows = [header]
    for nb in plan.notebooks:
        rows.append([nb.notebook, _hms(nb.measured_s)] + [_hms(nb.wall_s(n, plan.cores)) for n in nodes])
    rows.append(["total", _hms(sum(nb.measured_s for nb in plan.notebooks))]
                + [_hms(plan.wall_s(n)) for n in nodes])
    return rows


def assumption_lines(plan: Plan) -> list[str]:
    """Each task kind: how it spreads, its units and unit cost, each part's factors with their assumptions."""
    lines = []
    for t in plan.tasks:
        how = ("on the driver, one at a time" if t.on_driver else "holds a whole node" if t.holds_node
               else f"packs by CPUs ({t.cpus} core each)")
        lines.append(f"{t.notebook} {t.name} ({how}): {t.units} tasks ({t.units_assumption}; measured "
                     f"{t.measured_units}) x {t.unit_s:.1f} s (measured {t.measured_unit_s:.1f} s)")
        for p in t.parts:
            scaled = " x ".join(f"{f.name} {f.value:.3g}" for f in p.factors) or "unscaled"
            lines.append(f"  {p.name}: {p.measured_s:.2f} s -> {p.planned_s:.1f} s ({scaled})")
            lines.extend(f"    {f.name}: {f.assumption}" for f in p.factors)
    untasked = [nb.notebook for nb in plan.notebooks if not nb.tasks]
    lines.append(f"serial (never spread, as measured): {_hms(plan.serial_s())} in all; "
                 f"notebooks without tasks: {', '.join(untasked) or 'none'}; the others' time outside their tasks")
    return lines


def render_text(plan: Plan, nodes: list[int]) -> str:
    rows = table_rows(plan, nodes)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    body = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    return "\n".join([_heading(plan), *body, "", *assumption_lines(plan)]) + "\n"


def render_markdown(plan: Plan, nodes: list[int]) -> str:
    rows = table_rows(plan, nodes)
    out = [_heading(plan), "", "| " + " | ".join(rows[0]) + " |", "| --- " * len(rows[0]) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    out += ["", "What each task kind costs, and each factor's assumption:", "", "```", *assumption_lines(plan), "```"]
    return "\n".join(out) + "\n"


def _heading(plan: Plan) -> str:
    src = ", ".join(f"{k} {v}" for k, v in plan.source.items() if v)
    return (f"Planned wall time (H:MM:SS) of profile {plan.profile} on nodes of {plan.cores} cores, "
            f"from the task costs of a measured {plan.measured_profile} run ({src})")
