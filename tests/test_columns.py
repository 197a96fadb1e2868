"""Tables set for people from one place (study.columns): headers with units, rounding by kind, short hashes."""
from __future__ import annotations

import pandas as pd

from study import columns


def test_headers_units_rounding_and_hashes():
    df = pd.DataFrame({"model": ["mobilenet_v2_035_96"], "delta_cpu": [12.345], "elapse_s": [73.21],
                       "asset_sha256": ["ab" * 32], "assets_lock": ["sha256:" + "cd" * 32], "top1_agreement": [0.9667],
                       "size_mb": [3.456], "n_samples": [12], "browser_wasm_ms_per_image": [3.21], "ok": [True],
                       "latency_p90_ms": [1.2345], "note": ["a_b"], "accuracy": [float("nan")]})
    shown = columns.present(df)
    assert list(shown.columns) == ["Model", "ΔCPU (%)", "Elapsed (s)", "Asset (sha256)", "Asset lock",
                                   "Top-1 agreement", "Size (MB)", "Samples", "Browser wasm (ms/image)", "OK",
                                   "Latency p90 (ms)", "Note", "Accuracy"]
    assert shown.iloc[0].tolist() == ["mobilenet_v2_035_96", "12.3", "73.2", "abababab", "cdcdcdcd", "96.7", "3.5",
                                      "12", "3.2", "yes", "1.2", "a_b", "--"]
    assert df["asset_sha256"].iloc[0] == "ab" * 32  # the data keep the whole hash


def test_no_header_keeps_an_underscore():
    names = ["paper_ge2_versions", "products_2024", "export_s", "min_cosine", "percent_text", "x"]
    shown = columns.present(pd.DataFrame({n: [1] for n in names}))
    assert not any("_" in h for h in shown.columns)
    assert len(shown.columns) == len(names)


def test_values_that_name_columns_are_shown_as_their_headers():
    shown = columns.present(pd.DataFrame({"column": ["delta_cpu", "elapse_s", "accuracy"],
                                          "resource": ["ix.delta_cpu", "x.memory", "inference"]}))
    assert shown["Column"].tolist() == ["ΔCPU (%)", "Elapsed (s)", "Accuracy"]
    assert shown["Resource"].tolist() == ["IX ΔCPU (%)", "X Memory (%)", "inference"]


def test_numbers_of_one_kind_have_one_precision():
    shown = columns.present(pd.DataFrame({"spearman_rho": [0.3, -0.1054], "max_abs_diff": [3.017e-07, 0.0],
                                          "score": [81.9279, 1.5], "small": [0.3, 1.0], "big": [1234.5, 7.0]}))
    assert shown["Spearman's ρ"].tolist() == ["0.30", "-0.11"]
    assert shown["Max. abs. difference"].tolist() == ["3.0e-07", "0"]
    assert shown["Score"].tolist() == ["81.9", "1.5"]
    assert shown["Small"].tolist() == ["0.300", "1.000"]
    assert shown["Big"].tolist() == ["1,234", "7"]
