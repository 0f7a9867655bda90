"""The Teachable Machine export against tf_keras (the Keras 2 loader), on the five shared photos:
the largest probability difference and the lowest Grad-CAM correlation over three layers and both
classes. Run: .venv/bin/python bench/teachable_machine.py"""

import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

import references as ref  # noqa: E402
from conftest import PHOTO_NAMES, PHOTOS, SHARED  # noqa: E402
from dashboard.engine import Explainer, load_model, read_photo  # noqa: E402

EXPORT = SHARED / "models" / "teachable_machine_water" / "keras_model.h5"
LAYERS = ("out_relu", "block_13_expand_relu", "block_6_expand_relu")

ours = Explainer(load_model(EXPORT))
theirs = tf_keras.models.load_model(EXPORT, compile=False)
(base, pooling), (hidden, last) = (block.layers for block in theirs.layers)
probability_gap, correlations, empty = 0.0, [], 0
for name in PHOTO_NAMES:
    photo = read_photo(PHOTOS / name)
    x = ours.model.to_input(photo)
    expected = theirs(x, training=False).numpy()[0]
    for index, _, p in ours.predict(photo):
        probability_gap = max(probability_gap, abs(p - expected[index]))
    for layer in LAYERS:
        probe = tf_keras.Model(base.inputs, [base.get_layer(layer).output, base.output])
        for class_index in (0, 1):
            with tf.GradientTape() as tape:
                activations, features = probe(x, training=False)
                score = tf.matmul(hidden(pooling(features)), last.kernel)[0, class_index]  # the head has no bias
            reference = ref.gradcam(activations[0].numpy(), tape.gradient(score, activations)[0].numpy())
            raw = ours.explain(photo, layers=layer, class_index=class_index).raw
            if reference.max() == 0:
                empty += 1
                assert next(iter(raw.values())).max() == 0
                continue
            correlations.append(ref.correlation(next(iter(raw.values())), reference))
print(f"largest |probability - tf_keras| over {len(PHOTO_NAMES)} photos: {probability_gap:.1e}")
print(f"Grad-CAM raw map vs tf_keras: lowest r {min(correlations):.5f} over {len(correlations)} maps "
      f"({empty} empty in both)")
