"""What each profile means, on one page: every per-profile fact of the study is a field of the typed `Profile`.

Three profiles: `smoke` (tests and CI, tiny), `embedded` (the default, offline), `paper` (the paper's protocol on
the real online inputs; fails fast without them). A profile is resolved once at the boundary (`config.get_profile`:
the command line, `study.runs.reproduce`, a notebook's parameters) and passed down as the object; each part of the study
reads its own facts from it (`profile.sweep.epochs`, `profile.browser_limits.total`), through the thin reader
beside that part (`executors.sweep_config`, `zoo.members`, `browser.profile_limits`, `fidelity.Settings.of`,
`fidelity_analysis.formats_for_profile`, `matrix.matrix_for_profile`, `uncertainty.resamples_for`,
`publish.version_costs`, `noise_runs.plan`, `flowers.synth_spec`). A new per-profile fact is a field here, never a
table keyed by profile names beside its reader (`tests/test_architecture.py`).

This module sits at the floor: plain values and small frozen dataclasses, importing only `study.protocol` (whose
numbers the paper profile uses), so every sub-package may read it. `study.config` re-exports the entry points
(`PROFILES`, `get_profile`, `REPRODUCE_PROFILES`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from study.protocol import PAPER


@dataclass(frozen=True)
class Sweep:
    """The fine-tuning sweep's defaults (`study.casestudy.executors.sweep_config`; its keyword overrides win)."""

    epochs: int
    mode: str  # "full": backbone trainable; "frozen": backbone fixed, head on cached features
    interval: float  # sampling interval (s)
    cooldown_samples: int  # samples in each cool-down period
    timeout_s: float  # watchdog per run (the training worker's wall time)


@dataclass(frozen=True)
class SynthSpec:
    """How big the generated flower set of a profile is (`study.assets.flowers.synth_spec`)."""

    per_class: int
    size: int
    seed: int = 0


@dataclass(frozen=True)
class RepeatPlan:
    """Repeat `members` `repeats` times, sampled every `interval` s, with cool-downs of `cooldown_s` each
    (`study.casestudy.noise_runs.plan`)."""

    members: tuple[str, ...]
    repeats: int
    interval: float
    cooldown_s: float

    @property
    def cooldown_samples(self) -> int:
        return max(1, math.ceil(self.cooldown_s / self.interval - 1e-9))


@dataclass(frozen=True)
class Limits:
    """The browser test's watchdog limits (seconds): to reach `/start`, without progress while inferring, in all
    (`study.casestudy.browser.profile_limits`)."""

    start: float
    stall: float
    total: float


@dataclass(frozen=True)
class FidelitySettings:
    """How per-member deployment fidelity is timed and localised (`study.deployment.fidelity.Settings`, which is
    this with its reader `Settings.of`)."""

    warmup: int = 3
    repeats: int = 20
    timeout: float = 300  # per runtime process
    localise: str = "all"  # non-faithful rows localised: all | worst (the worst row per format) | none


@dataclass(frozen=True)
class VersionCosts:
    """What RQ3's `study.releases.publish.version_costs` measures of the published versions unless told
    (notebook 08)."""

    # the zoo member whose versions are published: a member that sees (real weights, `zoo.weights`), so that what a
    # version changes in accuracy means something
    member: str = "efficientnet_lite0_tf"
    versions: tuple[str, ...] | None = None  # the versions fine-tuned; None: every version
    browser_backends: tuple[str, ...] = ("wasm",)  # TF.js backends of the browser test; (): no browser test


DEFAULT_RESAMPLES = 1000  # the notebooks' bootstrap resamples (`uncertainty.resamples_for`) unless a profile says


@dataclass(frozen=True, kw_only=True)
class Profile:
    """How much of the study a run does and with which inputs: resolved once at the boundary (`config.get_profile`)
    and passed down as this object; each part of the study reads its fields."""

    name: str  # as results record it (manifest, run records, folder names)
    description: str
    online: bool  # the paper's protocol: real TF Hub assets (or an asset folder) and Flower Photos, nothing generated
    stand_ins: bool = False  # a missing fine-tuning sweep is stood in for by tiny classifiers (seconds), not run
    # the zoo members it uses (`study.assets.zoo.members`); None: the 38 of the paper's Tables IX/X (every member
    # `in_paper`, in the zoo's order)
    members: tuple[str, ...] | None
    sweep: Sweep  # the fine-tuning sweep (`executors.sweep_config`)
    synth: SynthSpec | None  # the synthetic flowers it fine-tunes on; None: Flower Photos (`flowers.synth_spec`)
    noise_plan: RepeatPlan | None  # members repeated beside the sweep (`noise_runs.plan`); None: none
    browser_limits: Limits  # the browser test's watchdog (`browser.profile_limits`)
    latency_members: int = 2  # notebook 05's backends compared on the smallest N TF.js models (`browser`)
    fidelity: FidelitySettings = field(default_factory=FidelitySettings)  # `fidelity.Settings.of`
    # the formats notebook 09 measures per member (`fidelity_analysis.formats_for_profile`); (): every format
    fidelity_formats: tuple[str, ...] = ()
    # RQ1's matrix (`matrix.matrix_for_profile`): these formats on the quick path; (): every format, full path
    matrix_formats: tuple[str, ...] = ()
    resamples: int = DEFAULT_RESAMPLES  # the notebooks' bootstrap resamples (`uncertainty.resamples_for`)
    version_costs: VersionCosts = field(default_factory=VersionCosts)  # `publish.version_costs`


# One member of each kind (`zoo.weights`): the smallest of Table IX (random init: labelled, never chosen) and the
# smallest member that sees (ImageNet weights, TF), which the decision and the product choose (issue 35).
SMOKE_MEMBERS = ("mobilenet_v1_025_128",)
SMOKE_SEEING = ("efficientnet_lite0_tf",)

SMOKE = Profile(
    name="smoke", description="smallest parameters: tiny generated inputs, for tests and CI", online=False,
    stand_ins=True,
    members=SMOKE_MEMBERS + SMOKE_SEEING,
    sweep=Sweep(epochs=1, mode="frozen", interval=0.1, cooldown_samples=3, timeout_s=240),
    synth=SynthSpec(per_class=20, size=64),
    # tests run every notebook with smoke: its tiny member twice (the fewest runs that give a cv) with 1.2 s cool-downs
    # (the 1 s interval's); coarser intervals lack a cool-down sample at most phase offsets: reported invalid.
    noise_plan=RepeatPlan(SMOKE_MEMBERS, 2, 0.1, 1.2),
    browser_limits=Limits(start=30, stall=30, total=90),
    latency_members=1,  # the 224 px member that sees on TF.js cpu and SwiftShader WebGL: many times the cost
    fidelity=FidelitySettings(warmup=2, repeats=5, timeout=180, localise="worst"),  # fewer repeats; the worst row
    fidelity_formats=("saved_model", "tfjs_graph_model_node", "litert_full_int8"),  # notebook 09: a few formats
    # notebook 01 (tests, CI): a few formats of each framework on the --quick path, about a minute
    matrix_formats=("saved_model", "litert_float32", "litert_dynamic_int8", "saved_model_c_api", "state_dict",
                    "dynamic_int8", "torchserve"),
    resamples=100,
    # notebook 08: the smallest MobileNet's versions, one fine-tuned, no browser (about a minute; the publishing of
    # the EfficientNet-Lite member the other profiles use is tested in tests/releases)
    version_costs=VersionCosts(member="mobilenet_v2_035_96", versions=("v5",), browser_backends=()),
)

EMBEDDED = Profile(
    name="embedded", description="default: fully offline on shipped or generated inputs", online=False,
    # Two kinds of member (`zoo.weights`). Members that see, for every finding about accuracy, the decision and the
    # product: the EfficientNet-Lite family as TF Hub assets (Lite0/1/2: width, depth and resolution grow together)
    # with ImageNet weights, and Lite0 in PyTorch (PyTorch Hub's side, second backend). Random-init resource stand-ins
    # for the paper's MobileNet family: V1 at three widths (the noise plan's members) and V2's smallest.
    # Round 4 dropped `mobilenet_v2_100_224` for the three TF EfficientNet-Lites (the cold `make reproduce` budget:
    # docs/reproduce_cache.md); `finetune --members ...` measures any member, `zoo build --members all` builds them.
    members=("mobilenet_v1_025_128", "mobilenet_v1_050_160", "mobilenet_v1_100_224", "mobilenet_v2_035_96",
             "efficientnet_lite0_tf", "efficientnet_lite1_tf", "efficientnet_lite2_tf", "efficientnet_lite0"),
    # the offline profiles scale the interval and the cool-down down so that the whole `make reproduce` stays
    # within about 10 minutes on 2 cores
    sweep=Sweep(epochs=2, mode="frozen", interval=0.5, cooldown_samples=3, timeout_s=600),
    synth=SynthSpec(per_class=100, size=160),
    # a small, a middle and a large MobileNet V1 by width x input pixels (the paper's Table IX holds MobileNets only;
    # V1 members fine-tune in about half the time of V2 members of the same size here: the cheapest spread), three
    # times each, at the Sampler's finest interval; 5 s cool-downs give the 1 s and 5 s (the paper's) intervals a
    # cool-down sample at every phase offset, 10 s and 15 s at some of them (the others are counted invalid, never
    # dropped): each second of cool-down costs 18 s of `make reproduce` (docs/reproducibility.md), and 10 s ones
    # broke its budget.
    noise_plan=RepeatPlan(("mobilenet_v1_025_128", "mobilenet_v1_050_160", "mobilenet_v1_100_224"), 3, 0.1, 5.0),
    browser_limits=Limits(start=60, stall=60, total=600),
    fidelity=FidelitySettings(localise="worst"),  # the worst row per format (the cold `make reproduce` budget)
    # notebook 08 publishes every version and fine-tunes the ones whose fine-tuning can differ in this profile's
    # frozen mode: v1, v4 (its outputs change) and v5 (the signature); v2 and v3 change only the API (their outputs
    # equal v1's on the same images, the diffs say so) and v3's momentum acts only in full fine-tuning (the paper
    # profile measures every version). Round 4's budget: EfficientNet-Lite0's versions cost ~3x the MobileNet's.
    version_costs=VersionCosts(versions=("v1", "v4", "v5")),
)

PAPER_PROFILE = Profile(
    name="paper", description="the paper's protocol on the real TF Hub assets and Flower Photos", online=True,
    members=None,  # the paper's 38
    # the paper's protocol (study.protocol.PAPER)
    sweep=Sweep(epochs=PAPER.epochs, mode="full", interval=PAPER.finetune_interval_s,
                cooldown_samples=PAPER.cooldown_samples, timeout_s=4 * 3600),
    synth=None,  # Flower Photos itself
    # runs of minutes to hours: no extra runs by default; `finetune --repeats N` repeats the sweep itself
    # (docs/reproducibility.md), and notebook 04 measures the noise from those repeats when there are any.
    noise_plan=None,
    browser_limits=Limits(start=120, stall=120, total=1800),
    fidelity=FidelitySettings(localise="all"),  # every non-faithful row
    # RQ1's matrix needs no online input (the models are built or shipped locally): every format, as embedded
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SMOKE, EMBEDDED, PAPER_PROFILE)}
DEFAULT_PROFILE = EMBEDDED.name  # when none is given (`config.get_profile`, a manifest entry without one)
TEST_PROFILE = SMOKE.name  # what the tests and CI run (every notebook, the fixture asset folder)
REPRODUCE_PROFILES = (EMBEDDED.name, PAPER_PROFILE.name)  # `make reproduce` offers these
RUNNABLE_PROFILES = (*REPRODUCE_PROFILES, TEST_PROFILE)  # `study reproduce` / `study draft` accept these
