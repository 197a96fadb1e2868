"""Tiny stand-ins for the sweep's fine-tuned models, in the sweep's own layout (tests and the smoke profile's
notebooks).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from study import config, files
from study.assets import refs as asset_refs
from study.casestudy import dataset, training
from study.runtime.images import load_images

TORCH_BACKBONE = "study.assets.torch_extractors:tiny_cnn"  # the torch stand-in's feature extractor (an asset reference)


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
        _finish(tmp, out, {"member": name, "backend": "tf", "input_size": size, "class_names": list(split.class_names),
                           "test_accuracy": accuracy, "profile": profile.name, "seed": seed,
                           "note": "study.casestudy.stand_ins.tiny_classifiers"}, evaluation, predictions)
    return out


def _finish(tmp: Path, out: Path, meta: dict, evaluation: list, predictions) -> None:
    """A stand-in staged in `tmp` (its classifier written) becomes `out/models/<member>` as the sweep leaves one:
    meta.json with its evaluation images, predictions/<member>.csv, then one rename (a killed build leaves no
    half-written model behind)."""
    import pandas as pd

    name = meta["member"]
    files.write_text(tmp / "meta.json", json.dumps(
        {**meta, "test_images": [{"path": str(p), "label": int(l)} for p, l in evaluation]}, indent=2) + "\n")
    folder = out / "models" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    files.write_csv(out / "predictions" / f"{name}.csv", pd.DataFrame(
        {"path": [str(p) for p, _ in evaluation], "label": [l for _, l in evaluation], "prediction": predictions}))
    os.replace(tmp, folder)


def tiny_torch_classifier(out: str | Path, profile: config.Profile, epochs: int = 30, seed: int = 0) -> Path:
    """A small PyTorch classifier in the sweep's torch layout (`out/models/<name>/model.pt` + `meta.json`,
    `out/predictions/<name>.csv`): the sweep's own classifier (`training._torch_classifier`) on the asset
    `TORCH_BACKBONE`, trained end to end (backbone and head: a frozen random backbone predicts one class), so
    `training.load_torch_classifier` rebuilds it as it rebuilds a swept torch member. Evaluation images as
    `tiny_classifiers`. Trained at one thread: on 2 shared cores torch's spinning workers made it 15x slower
    (46 s against 3 s). Returns `out`."""
    import numpy as np
    import torch

    out = Path(out)
    asset = asset_refs.resolve(TORCH_BACKBONE, profile)
    size, name = asset.input_size, f"tiny_torch_cnn_{asset.input_size}"
    folder = out / "models" / name
    if (folder / "meta.json").is_file():
        return out
    split = dataset.load_split(profile, seed=seed)
    evaluation = split.test + split.validation
    n_classes = len(split.class_names)

    def nchw(items):
        return torch.from_numpy(np.ascontiguousarray(load_images([p for p, _ in items], size).transpose(0, 3, 1, 2)))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            classifier = training._torch_classifier(asset_refs.feature_extractor(asset, profile, trainable=True),
                                                    asset.feature_dim, n_classes)
            x, y = nchw(split.train), torch.as_tensor([l for _, l in split.train])
            opt = torch.optim.Adam(classifier.parameters(), 3e-3)
            classifier.train()
            for _ in range(epochs):
                for idx in torch.randperm(len(y)).split(16):
                    loss = torch.nn.functional.nll_loss(torch.log(classifier(x[idx]) + 1e-9), y[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
    finally:
        torch.set_num_threads(threads)
    classifier.eval()
    with torch.no_grad():
        predictions = classifier(nchw(evaluation)).argmax(1).numpy()
    accuracy = float((predictions == [l for _, l in evaluation]).mean())

    tmp = folder.with_name(f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    checkpoint = {"member": name, "asset": asset.to_dict(), "feature_dim": asset.feature_dim, "n_classes": n_classes,
                  "state_dict": classifier.state_dict()}  # the sweep's checkpoint (training._train_torch)
    files.atomic_write(tmp / "model.pt", lambda path: torch.save(checkpoint, str(path)))
    _finish(tmp, out, {"member": name, "backend": "torch", "input_size": size, "class_names": list(split.class_names),
                       "test_accuracy": accuracy, "profile": profile.name, "seed": seed, "asset": asset.identity(),
                       "note": "study.casestudy.stand_ins.tiny_torch_classifier"}, evaluation, predictions)
    return out
