"""Train the two shapes models and ship them in assets/models/:

    python -m dashboard.demo.train            # a few minutes on 2 CPU cores

"shapes": a small CNN (four blocks of two conv + batch-norm + ReLU, global average pooling, Dense)
on clean images.
"shapes_shortcut": the same network trained on images whose corner mark's colour tells the class;
on clean images (no mark) it has to fall back on what it learned of the shapes, and mostly can't.
"shapes_vit": a small Vision Transformer (keras-hub's ViT on 64 px images: 8 px patches, an 8x8 grid,
a class token, 4 blocks of width 64) on the clean images, to set beside the CNN; each epoch sees the
images flipped and turned by quarter turns at random (a shape's class does not change). keras-hub
registers its classes, so the saved file loads in Keras' safe mode. It learns slowly: 80 epochs of
24,000 images (48 minutes on 2 cores) reach 66% held-out accuracy, where the CNN reaches 97% on
8,000 images in 24 minutes: with no convolution's locality built in, a ViT needs far more data.

    python -m dashboard.demo.train shapes_vit    # one of them
"""

import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from dashboard.demo.shapes import CLASSES, SIZE, dataset  # noqa: E402

MODELS = Path(__file__).resolve().parents[2] / "assets" / "models"
TRAIN, VALIDATION, TEST = (1, 8000), (2, 1000), (3, 1000)  # (seed, count)
VIT_SIZE = 64  # the ViT's input: 128 px with 16 px patches stayed at chance for 7 epochs


def halved(images):
    """128 px images as 64 px ones in 0..1 (means of 2x2 pixels), for the ViT."""
    n, side = len(images), VIT_SIZE
    return images.reshape(n, side, 2, side, 2, 3).mean(axis=(2, 4)).astype("float32") / 255.0


def turned(images, labels):
    """Random flips and quarter turns, drawn afresh every epoch."""
    import tensorflow as tf

    images = tf.image.random_flip_left_right(images)
    return tf.image.rot90(images, tf.random.uniform((), 0, 4, tf.int32)), labels


def network(name: str) -> keras.Model:
    inputs = keras.Input((SIZE, SIZE, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 255)(inputs)  # takes 0..255 pixels: preprocessing "none"
    for block, filters in enumerate([16, 32, 64, 128], start=1):
        for conv in (1, 2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{block}_conv{conv}")(x)
            x = keras.layers.BatchNormalization(name=f"block{block}_bn{conv}")(x)
            x = keras.layers.ReLU(name=f"block{block}_relu{conv}")(x)
        if block < 4:
            x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)  # block 4 works at 16x16
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def vit_network(name: str, steps: int) -> keras.Model:
    import keras_hub

    backbone = keras_hub.models.ViTBackbone(image_shape=(VIT_SIZE, VIT_SIZE, 3), patch_size=8, num_layers=4,
                                            num_heads=4, hidden_dim=64, mlp_dim=128)
    model = keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=len(CLASSES), activation="softmax",
                                                name=name)
    # Transformers start slowly on small data: a warm-up, then a cosine decay (a constant rate left this
    # one at chance for ten epochs).
    schedule = keras.optimizers.schedules.CosineDecay(1e-5, steps, warmup_target=1e-3, warmup_steps=steps // 15)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def accuracy(model, images, labels) -> float:
    return float((model.predict(images, batch_size=128, verbose=0).argmax(axis=1) == labels).mean())


def train(name: str, title: str, mark: str, epochs: int, build=network, preprocess="none", count=TRAIN[1]) -> dict:
    keras.utils.set_random_seed(0)
    started = time.perf_counter()
    x, y, _ = dataset(TRAIN[0], count, mark=mark)
    x_val, y_val, _ = dataset(*VALIDATION, mark=mark)
    model = build(name) if build is network else build(name, steps=epochs * (count // 64 + 1))
    if build is network:
        keras.Model.fit(model, x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=64, verbose=2,
                        shuffle=True, callbacks=[keras.callbacks.ReduceLROnPlateau(patience=2, factor=0.3)])
    else:  # the ViT takes 64 px in 0..1 (the card tells the app to scale; the engine resizes)
        import tensorflow as tf

        x, x_val = halved(x), halved(x_val)
        batches = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(count).map(turned, num_parallel_calls=2)
                   .batch(64).prefetch(2))
        keras.Model.fit(model, batches, validation_data=(x_val, y_val), epochs=epochs, verbose=2)
    prepare = (lambda images: images) if build is network else halved
    clean_x, clean_y, _ = dataset(*TEST, mark="none")
    clean_x = prepare(clean_x)
    card = {
        "title": title,
        "labels": list(CLASSES),
        "preprocess": preprocess,
        "trained_on": f"{count} images, seed {TRAIN[0]}, corner mark: {mark}",
        "held_out_accuracy_clean": accuracy(model, clean_x, clean_y),
        "training_seconds": round(time.perf_counter() - started),
    }
    if mark != "none":
        marked_x, marked_y, _ = dataset(*TEST, mark=mark)
        card["held_out_accuracy_with_mark"] = accuracy(model, prepare(marked_x), marked_y)
    MODELS.mkdir(parents=True, exist_ok=True)
    if build is network:  # saved without the optimiser's state, which the app never needs
        model = keras.Model(model.inputs, model.outputs, name=name)
    else:
        fresh = type(model).from_config(model.get_config())  # the same keras-hub class, never trained
        fresh.set_weights(model.get_weights())
        model = fresh
    model.save(MODELS / f"{name}.keras")
    (MODELS / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(name, card)
    return card


RECIPES = {
    "shapes": lambda: train("shapes", "Shapes (offline)", mark="none", epochs=14),
    "shapes_shortcut": lambda: train("shapes_shortcut", "Shapes with a shortcut", mark="class", epochs=4),
    "shapes_vit": lambda: train("shapes_vit", "Shapes ViT (offline)", mark="none", epochs=80, build=vit_network,
                                preprocess="unit", count=24000),
}

if __name__ == "__main__":
    import sys

    for recipe in sys.argv[1:] or RECIPES:
        RECIPES[recipe]()
