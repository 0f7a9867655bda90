"""Engine speed, as ratios of timings taken side by side in one process (absolute times drift
on a shared machine; ratios much less). Run: make bench  (or .venv/bin/python bench/engine.py)."""

import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")  # keras warns about the keras.io example's input structure

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dashboard.engine import Explainer, load_model  # noqa: E402

ROUNDS = 30
PHOTO = np.random.default_rng(0).integers(0, 255, (341, 512, 3), np.uint8)  # the size of shared/photos/cat.bmp
VGG_LAYERS = ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3", "block5_pool"]


def interleaved(**calls) -> dict:
    """Median seconds per call, the calls taking turns so drift hits all of them alike."""
    for call in calls.values():
        call(), call()  # warm up: compile, allocate
    times = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def compiled_forward(network, x):
    forward = tf.function(network, input_signature=[tf.TensorSpec(x.shape, tf.float32)])
    return lambda: forward(x).numpy()


def keras_io_gradcam(model, layer, img_array):
    """The keras.io example's make_gradcam_heatmap: a gradient model built on every call."""
    grad_model = keras.models.Model(model.inputs, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        layer_output, preds = grad_model(img_array)
        class_channel = preds[:, tf.argmax(preds[0])]
    grads = tape.gradient(class_channel, layer_output)
    pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
    heatmap = tf.squeeze(layer_output[0] @ pooled[..., tf.newaxis])
    return (tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)).numpy()


def report(title, times, numerator, denominator, bar):
    ratio = times[numerator] / times[denominator]
    print(f"{title:<58} {ratio:5.2f}x   ({numerator} {times[numerator] * 1e3:.1f} ms, "
          f"{denominator} {times[denominator] * 1e3:.1f} ms; bar {bar})")


def main():
    print(f"median of {ROUNDS} interleaved calls, photo 512x341, CPU threads: {os.cpu_count()}\n")
    mobilenet = Explainer(load_model("mobilenet_v2"))
    x = mobilenet.model.to_input(PHOTO)
    times = interleaved(
        ours=lambda: mobilenet.explain(PHOTO),
        forward=compiled_forward(mobilenet.model.network, x),
    )
    report("MobileNetV2: warm Grad-CAM call / compiled forward pass", times, "ours", "forward", "<= 1.3")

    linear = keras.applications.MobileNetV2(weights="imagenet", classifier_activation=None)
    times = interleaved(
        keras_io=lambda: keras_io_gradcam(linear, "out_relu", x),
        ours=lambda: mobilenet.explain(PHOTO),
    )
    report("MobileNetV2: keras.io make_gradcam_heatmap / ours", times, "keras_io", "ours", ">= 3")

    vgg = Explainer(load_model("vgg16", weights=None))
    x = vgg.model.to_input(PHOTO)
    times = interleaved(
        ours=lambda: vgg.explain(PHOTO),
        forward=compiled_forward(vgg.model.network, x),
        six_layers=lambda: vgg.explain(PHOTO, layers=VGG_LAYERS),
    )
    report("VGG16: warm Grad-CAM call / compiled forward pass", times, "ours", "forward", "<= 1.3")
    report("VGG16: six layers (block1_conv2 .. block5_pool) / one layer", times, "six_layers", "ours", "<= 2.5")

    vision_transformer()
    concurrency(mobilenet)
    faithfulness(mobilenet)

    # Score-CAM in a fresh process, so its peak memory is its own.
    subprocess.run([sys.executable, __file__, "--scorecam"], check=True)


def vision_transformer():
    """ViT-B/16's shape from keras-hub (random weights: no download), explained at its default layer
    (the last block's first norm, so the pass runs through all 12 blocks), and attention rollout."""
    import keras_hub

    backbone = keras_hub.models.ViTBackbone(image_shape=(224, 224, 3), patch_size=16, num_layers=12, num_heads=12,
                                            hidden_dim=768, mlp_dim=3072)
    vit = Explainer(keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=1000), preprocess="tf")
    x = vit.model.to_input(PHOTO)
    times = interleaved(
        ours=lambda: vit.explain(PHOTO),
        forward=compiled_forward(vit.model.network, x),
        rollout=lambda: vit.explain(PHOTO, method="rollout"),
    )
    report("ViT-B/16: warm Grad-CAM call / compiled forward pass", times, "ours", "forward", "<= 1.3")
    report("ViT-B/16: attention rollout (12 blocks) / compiled forward pass", times, "rollout", "forward", "-")


def faithfulness(explainer):
    """Deletion and insertion curves (51 steps each, batched) as forward-pass equivalents, and the
    sanity check's time."""
    from dashboard.engine import metrics

    from dashboard.engine.graph import frozen

    heat = explainer.explain(PHOTO).maps[explainer.default_layer]
    x = explainer.model.to_input(PHOTO)
    start = time.perf_counter()
    metrics.curves(explainer, PHOTO, heat, 285)
    first = time.perf_counter() - start
    forward = compiled_forward(explainer.model.network, x)
    frozen_forward = frozen(tf.function(explainer.model.network).get_concrete_function(tf.TensorSpec(x.shape, tf.float32)))
    times = interleaved(curves=lambda: metrics.curves(explainer, PHOTO, heat, 285), forward=forward,
                        frozen_forward=lambda: frozen_forward(tf.constant(x))[0].numpy())
    report("MobileNetV2: deletion + insertion curves / one forward pass", times, "curves", "forward", "<= 40")
    report("MobileNetV2: the same curves / one frozen forward pass", times, "curves", "frozen_forward",
           "< 100, a loop's cost")
    report("MobileNetV2: frozen forward pass / compiled forward pass", times, "frozen_forward", "forward", "< 1")
    print(f"{'MobileNetV2: first curves call (freezes the probe)':<58} {first:5.1f} s")
    start = time.perf_counter()
    steps = len(metrics.sanity(explainer, PHOTO, explainer.default_layer)["cascade"])
    print(f"{'MobileNetV2: sanity check, ' + str(steps) + ' randomisation steps':<58} {time.perf_counter() - start:5.1f} s "
          "(bar <= 15 s)")


def concurrency(explainer, sessions=8):
    """A class asking at once: 8 threads (Streamlit's sessions) explaining different photos, left to
    TensorFlow's own scheduling, or taking turns behind one lock per model."""
    import threading

    photos = [np.random.default_rng(seed).integers(0, 255, (480, 640, 3), np.uint8) for seed in range(sessions)]
    turn = threading.Lock()

    def at_once(serialise):
        def work(photo):
            if serialise:
                with turn:
                    explainer.explain(photo)
            else:
                explainer.explain(photo)

        threads = [threading.Thread(target=work, args=(photo,)) for photo in photos]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    times = interleaved(free=lambda: at_once(False), one_at_a_time=lambda: at_once(True))
    report(f"{sessions} concurrent explains: one pass at a time / free", times, "one_at_a_time", "free", "> 1: stay free")


def scorecam():
    from dashboard.engine.methods import SCORECAM_CHUNK

    explainer = Explainer(load_model("mobilenet_v2"))
    explainer.explain(PHOTO)  # model loaded and traced: the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    explainer.explain(PHOTO, method="scorecam", layers=["out_relu"])
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    all_at_once = 1280 * 224 * 224 * 3 * 4 / 2**20
    print(f"Score-CAM, MobileNetV2 out_relu (1280 channels, chunks of {SCORECAM_CHUNK}): {seconds:.1f} s; "
          f"peak memory {after:.0f} MiB, {max(after - before, 0):.0f} MiB above the warm process "
          f"(the 1280 masked inputs alone would take {all_at_once:.0f} MiB at once)")


if __name__ == "__main__":
    scorecam() if "--scorecam" in sys.argv else main()
