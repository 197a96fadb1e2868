"""Fixtures of the deployment tests."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_saved_model(tmp_path_factory):
    """A SavedModel of one convolution with a serving signature (input `images`), its inputs and outputs."""
    import tensorflow as tf

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 4], seed=[1, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="images")])
        def serve(self, images):
            y = tf.nn.relu(tf.nn.conv2d(images, self.kernel, 1, "SAME"))
            return {"features": tf.reduce_mean(y, axis=[1, 2])}

    module = Tiny()
    path = tmp_path_factory.mktemp("tiny") / "saved_model"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    x = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    return path, x, module.serve(tf.constant(x))["features"].numpy()
