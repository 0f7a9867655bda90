"""Train the two shapes models and ship them in assets/models/:

    python -m dashboard.demo.train            # a few minutes on 2 CPU cores

"shapes": a small CNN (four blocks of two conv + batch-norm + ReLU, global average pooling, Dense)
on clean images.
"shapes_shortcut": the same network trained on images whose corner mark's colour tells the class;
on clean images (no mark) it has to fall back on what it learned of the shapes, and mostly can't.
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


def accuracy(model, images, labels) -> float:
    return float((model.predict(images, batch_size=128, verbose=0).argmax(axis=1) == labels).mean())


def train(name: str, title: str, mark: str, epochs: int) -> dict:
    keras.utils.set_random_seed(0)
    started = time.perf_counter()
    x, y, _ = dataset(*TRAIN, mark=mark)
    x_val, y_val, _ = dataset(*VALIDATION, mark=mark)
    model = network(name)
    model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=64, verbose=2,
              callbacks=[keras.callbacks.ReduceLROnPlateau(patience=2, factor=0.3)])
    clean_x, clean_y, _ = dataset(*TEST, mark="none")
    card = {
        "title": title,
        "labels": list(CLASSES),
        "preprocess": "none",
        "trained_on": f"{TRAIN[1]} images, seed {TRAIN[0]}, corner mark: {mark}",
        "held_out_accuracy_clean": accuracy(model, clean_x, clean_y),
        "training_seconds": round(time.perf_counter() - started),
    }
    if mark != "none":
        marked_x, marked_y, _ = dataset(*TEST, mark=mark)
        card["held_out_accuracy_with_mark"] = accuracy(model, marked_x, marked_y)
    MODELS.mkdir(parents=True, exist_ok=True)
    keras.Model(model.inputs, model.outputs, name=name).save(MODELS / f"{name}.keras")  # no optimiser state
    (MODELS / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(name, card)
    return card


if __name__ == "__main__":
    train("shapes", "Shapes (offline)", mark="none", epochs=14)
    train("shapes_shortcut", "Shapes with a shortcut", mark="class", epochs=4)
