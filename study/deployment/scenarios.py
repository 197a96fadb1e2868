"""The deployment scenarios of Tables IV-V as data (data/deployment_scenarios.csv): which format each needs, its
status today, whether it runs here.
"""
from __future__ import annotations

import pandas as pd

from study import config, paper
from study.errors import StudyError
from study.report import and_list


SCENARIOS_CSV = config.DATA / "deployment_scenarios.csv"


FRAMEWORKS = {"tf": "TensorFlow", "torch": "PyTorch"}
# The formats (the `format` column of data/deployment_scenarios.csv) as a reader names them: figures and the draft.
FORMAT_LABELS: dict[str, str] = {
    "saved_model": "SavedModel", "hub_keras_layer": "Hub KerasLayer", "hub_module_tf1": "TF1 Hub module",
    "checkpoint": "TF checkpoint", "frozen_graphdef": "frozen GraphDef", "litert_float32": "LiteRT float32",
    "litert_dynamic_int8": "LiteRT dynamic int8", "litert_full_int8": "LiteRT full int8",
    "saved_model_c_api": "SavedModel via the C API", "rest_tf_serving_api": "TF Serving REST API",
    "grpc_tf_serving": "TF Serving gRPC", "tfjs_graph_model_node": "TF.js graph model in Node.js",
    "tfjs_graph_model_browser": "TF.js graph model in a browser", "state_dict": "PyTorch state dict",
    "pickle_module": "pickled PyTorch module", "torch_export": "torch.export program",
    "dynamic_int8": "PyTorch dynamic int8", "torchscript_lite": "TorchScript Lite", "executorch_xnnpack": "ExecuTorch (XNNPACK)",
    "torchscript_trace": "TorchScript (traced)", "torchscript_script": "TorchScript (scripted)",
    "aoti_package": "AOTInductor package", "rest_flask": "Flask REST API", "torchserve": "TorchServe", "onnx": "ONNX",
    "onnx_int8": "ONNX int8", "caffe2": "Caffe2", "mxnet": "MXNet", "cntk": "CNTK", "onnx_web_node": "ONNX Runtime Web in Node.js",
}


def format_label(fmt: str) -> str:
    """How a reader names a deployment format (`FORMAT_LABELS`; an unknown key as it is)."""
    return FORMAT_LABELS.get(fmt, fmt)


def scenarios(framework: str | None = None) -> pd.DataFrame:
    """The current scenario table (`data/deployment_scenarios.csv`), optionally for 'tf' or 'torch'."""
    df = pd.read_csv(SCENARIOS_CSV, keep_default_na=False)
    df.attrs["source"] = "data/deployment_scenarios.csv (current deployment scenarios, 2026)"
    if framework is None or framework == "all":
        return df
    return df[df["framework"] == _framework_name(framework)].reset_index(drop=True)


def _framework_name(framework: str) -> str:
    if framework not in FRAMEWORKS:
        raise StudyError(f"unknown framework {framework!r}; valid: {', '.join(FRAMEWORKS)}, all")
    return FRAMEWORKS[framework]


def runnable(row: pd.Series | dict) -> bool:
    return str(row["runnable_here"]).strip().lower() == "yes"


def check_formats(names: list[str] | None, framework: str = "all") -> list[str]:
    """The scenario formats to run: `names` validated against the table (StudyError listing valid names)."""
    valid = list(scenarios(framework)["format"])
    if not names:
        return valid
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise StudyError(f"unknown deployment format(s) {', '.join(unknown)} for framework {framework!r}; "
                         f"valid: {', '.join(valid)}")
    return list(names)


def status_changes() -> pd.DataFrame:
    """Paper Tables IV-V (2019) beside the current table: per paper scenario group, what became of each format."""
    now = scenarios()
    old = paper.deployment_methods()
    old = old.assign(framework=old["framework"].replace({"TensorFlow 1": "TensorFlow"}))
    merged = now.merge(old[["framework", "scenario_group", "output_format", "calling_methods"]],
                       on=["framework", "scenario_group"], how="left")
    merged["in_paper"] = merged["output_format"].notna()
    cols = ["framework", "scenario_group", "output_format", "calling_methods", "format", "runtime", "status",
            "status_source", "in_paper"]
    out = merged[cols].rename(columns={"output_format": "paper_formats_2019", "calling_methods": "paper_calling",
                                       "format": "format_2026"})
    out.attrs["source"] = "paper Tables IV-V (2019) and data/deployment_scenarios.csv (2026)"
    return out


def framework_of(fmt: str) -> str:
    """The framework ("tf" | "torch") whose backend exports and loads format `fmt`."""
    return "tf" if scenarios("tf")["format"].eq(fmt).any() else "torch"


def paper_reading(methods: pd.DataFrame) -> str:
    """The paper's Tables IV-V (`paper.deployment_methods`) in one sentence: scenario groups per framework."""
    groups = methods.groupby("framework", sort=False)["scenario_group"].agg(lambda g: list(dict.fromkeys(g)))
    return "In the paper's tables " + and_list(f"{fw} has {len(g)} scenario groups ({', '.join(g)})"
                                              for fw, g in groups.items()) + "."


def status_reading(changes: pd.DataFrame) -> str:
    """Today's table (`status_changes`) in one sentence: formats per status, the non-current ones named."""

    counts = changes["status"].value_counts()
    named = [f"{status}: {', '.join(changes.loc[changes['status'] == status, 'format_2026'])}"
             for status in counts.index if status != "current"]
    return (f"Of today's {len(changes)} formats, {counts.get('current', 0)} are current"
            + (f"; {'; '.join(named)}" if named else "") + " (each status has a source: `status_source`).")
