"""Content keys: a result is reused only when everything that produced it is unchanged.

A key is a dict of named components (each a sha256), so a mismatch can say *what* changed:

- `code`: the `study` modules a notebook or step uses, found transitively from the file tree by parsing
  imports with `ast` (module- and function-level `import study.x`, `from study import x`, `from study.a.b
  import c`, relative imports, and string constants naming a module, e.g. `python -m study.finetune` or
  `importlib.import_module("study.x")`; not under `if __name__ == "__main__":`, which only dispatches to the
  command line). A module is hashed as its AST dump with docstrings removed, so a
  comment, a docstring or a re-wrapped line does not change the key; any change to what runs does.
- `environment`: `requirements/lock.txt`, `web/package-lock.json` and Python / platform.
- `machine`: CPU model and usable cores; measurements from another machine are never reused as this one's.
- whatever else the caller names (configuration, input checksums).

A step's record under such a key is `study.cache.step.Step`; a notebook's, `study.runs.reproduce`.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from study import files
from study.config import ROOT, WEB

PACKAGE = "study"
ENVIRONMENT_FILES = (ROOT / "requirements" / "lock.txt", WEB / "package-lock.json")


def digest(value: Any) -> str:
    """sha256 of a JSON-able value (sorted keys), or of bytes / str as they are."""
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes):
        value = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(value).hexdigest()


# ------------------------------------------------------------------------------------ code
def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The file of module `name` (`study.a.b` -> study/a/b.py or study/a/b/__init__.py), or None."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def strip_docstrings(tree: ast.AST) -> ast.AST:
    """Remove module / class / function docstrings in place (they do not change what runs)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def parse(source: str, where: str = "<source>") -> ast.Module:
    """`ast.parse`, tolerating notebook lines that are not Python (`%magic`, `!shell`)."""
    try:
        return ast.parse(source, where)
    except SyntaxError:
        kept = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        return ast.parse("\n".join(kept), where)


def code_digest(source: str, where: str = "<source>") -> str:
    """sha256 of the source's AST without docstrings: comments and layout do not count."""
    return digest(ast.dump(strip_docstrings(parse(source, where))))


def _is_main_guard(node: ast.AST) -> bool:
    """`if __name__ == "__main__":`: the module run as a script (its command line), not the library."""
    t = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(t, ast.Compare) and isinstance(t.left, ast.Name)
            and t.left.id == "__name__" and len(t.comparators) == 1
            and isinstance(t.comparators[0], ast.Constant) and t.comparators[0].value == "__main__")


def _walk_library(tree: ast.AST) -> Iterable[ast.AST]:
    """`ast.walk` without `if __name__ == "__main__":` blocks."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo += [c for c in ast.iter_child_nodes(node) if not _is_main_guard(c)]


def imported_modules(tree: ast.AST, current: str | None = None, root: Path = ROOT) -> set[str]:
    """`study` modules (and their parent packages) a parsed source imports, at any depth of the tree."""
    found: set[str] = set()

    def add(name: str) -> None:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            if module_file(".".join(parts[:i]), root):
                found.add(".".join(parts[:i]))

    package = None
    if current:
        is_pkg = module_file(current, root) is not None and module_file(current, root).name == "__init__.py"
        package = current if is_pkg else current.rpartition(".")[0]
    for node in _walk_library(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from .a import b
                if not package:
                    continue
                up = package.split(".")
                up = up[:len(up) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            if base.split(".")[0] != PACKAGE:
                continue
            add(base)
            for alias in node.names:  # `from study import x`: x may be a module
                if module_file(f"{base}.{alias.name}", root):
                    add(f"{base}.{alias.name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith(PACKAGE + ".") and module_file(node.value, root):
            add(node.value)  # "python -m study.x", importlib.import_module("study.x")
    return found


@functools.lru_cache(maxsize=None)
def _module_info(path: Path, mtime_ns: int, size: int, name: str, root: Path) -> tuple[str, frozenset[str]]:
    tree = parse(path.read_text(encoding="utf-8"), str(path))
    imports = frozenset(imported_modules(tree, name, root))
    return digest(ast.dump(strip_docstrings(tree))), imports


def module_info(name: str, root: Path = ROOT) -> tuple[str, frozenset[str]]:
    """(digest, directly imported study modules) of module `name`; cached per file version."""
    path = module_file(name, root)
    if path is None:
        raise KeyError(name)
    st = path.stat()
    return _module_info(path, st.st_mtime_ns, st.st_size, name, root)


def module_closure(names: Iterable[str], root: Path = ROOT) -> dict[str, str]:
    """{module: digest} for `names` and every `study` module they import, transitively."""
    todo = [n for n in names if module_file(n, root)]
    seen: dict[str, str] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name], imports = module_info(name, root)
        parents = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}  # importing runs them too
        todo += [m for m in imports | parents if m not in seen and module_file(m, root)]
    return dict(sorted(seen.items()))


def module_path(name: str, root: Path = ROOT) -> str:
    """`study.zoos.families` -> 'study/zoos/families.py' (for messages)."""
    path = module_file(name, root)
    return str(path.relative_to(root)) if path else name


# ------------------------------------------------------------------------- environment / machine
@functools.lru_cache(maxsize=1)
def machine() -> dict[str, Any]:
    """What a measurement depends on beyond code: CPU model, usable cores, OS, Python."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_model": model or platform.processor() or platform.machine(), "cores": cores,
            "platform": f"{platform.system()} {platform.machine()}", "python": sys.version.split()[0]}


def file_digest(path: Path) -> str:
    """sha256 of a file or folder (`study.files.checksum`, as the manifest records inputs), or 'missing'."""
    return files.checksum(path) if path.exists() else "missing"


def environment() -> dict[str, str]:
    """Digests of the lock files (pinned Python and npm packages)."""
    return {str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p): file_digest(p)
            for p in ENVIRONMENT_FILES}


def web_sources() -> dict[str, str]:
    """Digests of the project's own web/ files (pages, Node.js runners), node_modules excluded."""
    return {str(p.relative_to(ROOT)): files.sha256(p) for p in sorted(WEB.rglob("*"))
            if p.is_file() and "node_modules" not in p.relative_to(WEB).parts}


# ---------------------------------------------------------------------------------- keys
def key_of(components: Mapping[str, Any]) -> str:
    return digest({k: components[k] for k in sorted(components)})


def step_components(modules: Iterable[str], config: Any = None, *, inputs: Iterable[str | Path] = (),
                    extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The named components of a step's key: code closure of `modules`, `config`, input files, lock files,
    machine. `modules` are module names (pass `__name__`: it survives the module being moved)."""
    comps = {"code": digest(module_closure(modules)), "config": digest(config),
             "environment": digest(environment()), "machine": digest(machine())}
    ins = {str(p): file_digest(Path(p)) for p in inputs}
    if ins:
        comps["inputs"] = digest(ins)
    for k, v in (extra or {}).items():
        comps[k] = digest(v)
    return comps


def step_key(modules: Iterable[str], config: Any = None, **kwargs: Any) -> str:
    """One sha256 over `step_components(...)`."""
    return key_of(step_components(modules, config, **kwargs))


def changed(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Names of components that differ (present in one only, or with another digest)."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
