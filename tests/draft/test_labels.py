"""Labels of the study's keys as the draft prints them (study.draft.labels): formats, column keys in text, decision
rules as prose."""
from __future__ import annotations

import pandas as pd

from study import columns
from study.draft import labels


def test_every_deployment_format_and_table_key_has_a_readers_label():
    from study import config

    formats = pd.read_csv(config.DATA / "deployment_scenarios.csv")["format"]
    assert set(formats) <= set(labels.FORMATS)
    for key in formats:
        assert "_" not in labels.humanise(key)
    for key in ("ix.delta_cpu", "ix.elapse", "ix.delta_mem", "x.gpu_memory", "noise_model", "input_size",
                "paper_ge2_versions"):
        shown = columns.describe(key)[0]
        assert "_" not in shown and "." not in shown.split(" ")[0], shown


def test_keys_inside_text_and_decision_rules_read_as_prose():
    shown = labels.humanise("decision.select(accuracy>0.62 > min:inference > max:accuracy); "
                             "ix.delta_cpu and x.gpu_memory; litert_full_int8 fails")
    assert "accuracy above 0.62, then the least inference resources, then the highest accuracy" in shown
    assert "Table IX ΔCPU" in shown and "Table X GPU memory" in shown and "LiteRT full int8" in shown
    assert "ix." not in shown and "min:" not in shown and "_int8" not in shown
    assert labels.rule_prose("min:ix.delta_cpu > max:accuracy") == "the least Table IX ΔCPU, then the highest accuracy"
    frame = labels.present(pd.DataFrame({"items": ["accuracy>0.62 > min:inference > max:accuracy"],
                                          "format": ["litert_full_int8"]}))
    assert frame.iloc[0].tolist() == ["accuracy above 0.62, then the least inference resources, then the highest "
                                      "accuracy", "LiteRT full int8"]

