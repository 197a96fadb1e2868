"""Tiny stand-ins for the sweep's fine-tuned models, in the sweep's own layout (tests and the smoke profile's
notebooks).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from study import config, files
from study.casestudy import dataset, training
from study.runtime.images import load_images


def tiny_classifiers(out: str | Path, profile: config.Profile, sizes: tuple[int, ...] = (32, 48), epochs: int = 40,
                     seed: int = 0) -> Path:
    """Small MobileNet-style classifiers (conv, batch norm, ReLU6, depthwise conv) trained on the profile's
    split, saved exactly as the fine-tuning sweep saves its models (`out/models/<name>/saved_model` with
    `serving_default`: float32 images (N, S, S, 3) in [0, 1] -> softmax (N, C), plus `meta.json`).

    For when no sweep output exists and seconds matter (the sweep's smoke run takes about a minute): they go
    through the same conversion, page and stats server. Their evaluation images are the split's test +
    validation images (more images make the browser-vs-Python comparison stricter). Returns `out`.
    """
    import numpy as np
    import pandas as pd
    import tf_keras as keras

    out = Path(out)
    split = dataset.load_split(profile, seed=seed)
    evaluation = split.test + split.validation
    layers = keras.layers
    for size in sizes:
        name = f"tiny_mobilenet_{size}"
        folder = out / "models" / name
        if (folder / "meta.json").is_file():
            continue
        keras.utils.set_random_seed(seed)
        images = keras.Input((size, size, 3), name="images")
        x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(images)
        x = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.5)(x))
        x = layers.ReLU(6.0)(layers.DepthwiseConv2D(3, strides=2, padding="same")(x))
        x = layers.Conv2D(32, 1, use_bias=False)(x)
        x = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.5)(x))
        probabilities = layers.Dense(len(split.class_names), activation="softmax")(layers.GlobalAveragePooling2D()(x))
        model = keras.Model(images, probabilities, name=name)
        model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
        model.fit(load_images([p for p, _ in split.train], size), np.array([l for _, l in split.train]),
                  epochs=epochs, batch_size=16, verbose=0)
        x_eval = load_images([p for p, _ in evaluation], size)
        predictions = model.predict(x_eval, verbose=0).argmax(1)
        accuracy = float((predictions == [l for _, l in evaluation]).mean())

        tmp = folder.with_name(f".{name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        training.save_classifier(model, tmp / "saved_model", size)
        files.write_text(tmp / "meta.json", json.dumps({
            "member": name, "backend": "tf", "input_size": size, "class_names": list(split.class_names),
            "test_accuracy": accuracy, "profile": profile.name, "seed": seed, "note": "study.casestudy.stand_ins.tiny_classifiers",
            "test_images": [{"path": str(p), "label": int(l)} for p, l in evaluation]}, indent=2) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        files.write_csv(out / "predictions" / f"{name}.csv", pd.DataFrame(
            {"path": [str(p) for p, _ in evaluation], "label": [l for _, l in evaluation], "prediction": predictions}))
        os.replace(tmp, folder)  # a killed build leaves no half-written model behind
    return out
