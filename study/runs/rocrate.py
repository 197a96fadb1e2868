"""The artifact's RO-Crate metadata (`ro-crate-metadata.json`): a Workflow Run Crate of one `make reproduce`, as the
specification's JSON-LD, written here (no RO-Crate library).

RO-Crate 1.1: the metadata descriptor (`ro-crate-metadata.json`, a CreativeWork that `conformsTo` the 1.1
specification and is `about` the root), the root data entity `./` (a Dataset with name, description,
datePublished, license and `hasPart`: every file of the archive, each a File entity with its size and sha256).
Workflow Run Crate 0.5 (extending Process Run Crate 0.5 and Workflow RO-Crate 1.0): the root `conformsTo` the three
profiles and has `mainEntity` the workflow (`Makefile`, a File + SoftwareSourceCode + ComputationalWorkflow in GNU
Make, its formal parameter the profile), and a CreateAction (`mentions` of the root) whose `instrument` is the
workflow, `object` the profile's value and the lock files, `result` the outputs, with start and end times and the
commit and machine in its description.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

CONTEXT = "https://w3id.org/ro/crate/1.1/context"
SPEC = "https://w3id.org/ro/crate/1.1"
METADATA = "ro-crate-metadata.json"
PROFILES = {"https://w3id.org/ro/wfrun/process/0.5": ("Process Run Crate", "0.5"),
            "https://w3id.org/ro/wfrun/workflow/0.5": ("Workflow Run Crate", "0.5"),
            "https://w3id.org/workflowhub/workflow-ro-crate/1.0": ("Workflow RO-Crate", "1.0")}
WORKFLOW = "Makefile"
LICENSES = {"Apache-2.0": "Apache License 2.0"}
FORMAL_PARAMETER = "https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE"
ROOT_REQUIRED = ("name", "description", "datePublished", "license", "hasPart")  # RO-Crate 1.1's root data entity


def _ref(id_: str) -> dict[str, str]:
    return {"@id": id_}


def metadata(files: Mapping[str, Mapping[str, Any]], *, name: str, description: str, license_id: str,
             profile: str, commit: str, machine: Mapping[str, Any], started: str, ended: str,
             inputs: Iterable[str], outputs: Iterable[str], published: dt.date | None = None) -> dict[str, Any]:
    """The crate's JSON-LD: `files` {path in the archive: {"sha256", "bytes"}}, the run's `inputs` and `outputs`
    (paths among `files`)."""
    license_url = f"https://spdx.org/licenses/{license_id}"
    parts = sorted(set(files) | {WORKFLOW})
    root = {"@id": "./", "@type": "Dataset", "name": name, "description": description,
            "datePublished": (published or dt.date.today()).isoformat(), "license": _ref(license_url),
            "conformsTo": [_ref(p) for p in PROFILES], "mainEntity": _ref(WORKFLOW),
            "hasPart": [_ref(p) for p in parts], "mentions": [_ref("#run")]}
    graph: list[dict[str, Any]] = [
        {"@id": METADATA, "@type": "CreativeWork", "conformsTo": _ref(SPEC), "about": _ref("./")},
        root,
        {"@id": license_url, "@type": "CreativeWork", "name": LICENSES.get(license_id, license_id),
         "identifier": license_id},
        *({"@id": url, "@type": "CreativeWork", "name": title, "version": version}
          for url, (title, version) in PROFILES.items()),
        {"@id": "#gnu-make", "@type": "ComputerLanguage", "name": "GNU Make",
         "url": _ref("https://www.gnu.org/software/make/")},
        {"@id": "#param-profile", "@type": "FormalParameter", "conformsTo": _ref(FORMAL_PARAMETER),
         "name": "PROFILE", "additionalType": "Text",
         "description": "the study's profile (what each profile means: study/profiles.py)"},
        {"@id": "#value-profile", "@type": "PropertyValue", "exampleOfWork": _ref("#param-profile"),
         "name": "PROFILE", "value": profile},
    ]
    for path in parts:
        entry = files.get(path, {})
        types: Any = ["File", "SoftwareSourceCode", "ComputationalWorkflow"] if path == WORKFLOW else "File"
        entity: dict[str, Any] = {"@id": path, "@type": types, "name": path}
        if entry:
            entity |= {"contentSize": str(entry["bytes"]), "sha256": entry["sha256"]}
        if path == WORKFLOW:
            entity |= {"name": "make reproduce", "programmingLanguage": _ref("#gnu-make"),
                       "input": [_ref("#param-profile")]}
        graph.append(entity)
    where = f"{machine.get('cpu_model', 'unknown CPU')}, {machine.get('cores', '?')} usable cores, " \
            f"{machine.get('platform', '')}, Python {machine.get('python', '?')}"
    graph.append({"@id": "#run", "@type": "CreateAction", "name": f"make reproduce PROFILE={profile}",
                  "description": f"commit {commit}; machine: {where}", "instrument": _ref(WORKFLOW),
                  "startTime": started, "endTime": ended,
                  "object": [_ref("#value-profile"), *(_ref(p) for p in inputs)],
                  "result": [_ref(p) for p in outputs]})
    return {"@context": CONTEXT, "@graph": graph}


def problems(crate: Mapping[str, Any]) -> list[str]:
    """What the crate lacks of RO-Crate 1.1's and Workflow Run Crate's required entities (empty: none)."""
    if crate.get("@context") != CONTEXT or not isinstance(crate.get("@graph"), list):
        return ["no RO-Crate 1.1 @context or no @graph"]
    by_id = {e.get("@id"): e for e in crate["@graph"] if isinstance(e, dict)}
    out = []
    descriptor = by_id.get(METADATA, {})
    if descriptor.get("conformsTo", {}).get("@id") != SPEC or descriptor.get("about", {}).get("@id") != "./":
        out.append(f"{METADATA} descriptor does not conform to {SPEC} about ./")
    root = by_id.get("./", {})
    if root.get("@type") != "Dataset":
        out.append("no root Dataset ./")
    out += [f"root ./ lacks {k}" for k in ROOT_REQUIRED if not root.get(k)]
    out += [f"hasPart {p['@id']} has no entity" for p in root.get("hasPart", []) if p.get("@id") not in by_id]
    if {p.get("@id") for p in root.get("conformsTo", [])} != set(PROFILES):
        out.append("root does not conform to the Workflow Run Crate profiles")
    main = by_id.get(root.get("mainEntity", {}).get("@id"), {})
    if "ComputationalWorkflow" not in (main.get("@type") or []):
        out.append("mainEntity is no ComputationalWorkflow")
    actions = [e for e in by_id.values() if e.get("@type") == "CreateAction"]
    if not any(a.get("instrument", {}).get("@id") == main.get("@id") for a in actions):
        out.append("no CreateAction whose instrument is the workflow")
    return out
