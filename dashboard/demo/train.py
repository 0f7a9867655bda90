"""Train the two shapes models and ship them in assets/models/:

    python -m dashboard.demo.train            # a few minutes on 2 CPU cores

"shapes": a small CNN (four blocks of two conv + batch-norm + ReLU, global average pooling, Dense)
on clean images.
"shapes_shortcut": the same network trained on images whose corner mark's colour tells the class;
on clean images (no mark) it has to fall back on what it learned of the shapes, and mostly can't.
"shapes_vit": a small Vision Transformer (keras-hub's ViT: 16 px patches, an 8x8 grid, a class
token, 4 blocks of width 64) on the clean images, to set beside the CNN. keras-hub registers its
classes, so the saved file loads in Keras' safe mode.

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

    backbone = keras_hub.models.ViTBackbone(image_shape=(SIZE, SIZE, 3), patch_size=16, num_layers=4, num_heads=4,
                                            hidden_dim=64, mlp_dim=128)
    model = keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=len(CLASSES), activation="softmax",
                                                name=name)
    # Transformers start slowly on small data: a warm-up, then a cosine decay (a constant rate left this
    # one at chance for ten epochs).
    schedule = keras.optimizers.schedules.CosineDecay(1e-5, steps, warmup_target=1e-3, warmup_steps=steps // 10)
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
    model = build(name) if build is network else build(name, steps=epochs * (count // 64))
    if preprocess == "unit":  # the ViT takes 0..1 pixels; the card tells the app to scale them
        x, x_val = x / 255.0, x_val / 255.0
    schedule = [] if build is not network else [keras.callbacks.ReduceLROnPlateau(patience=2, factor=0.3)]
    keras.Model.fit(model, x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=64, verbose=2,
                    shuffle=True, callbacks=schedule)  # keras.Model's fit: keras-hub's would not shuffle
    scale = 255.0 if preprocess == "unit" else 1.0
    clean_x, clean_y, _ = dataset(*TEST, mark="none")
    clean_x = clean_x / scale
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
        card["held_out_accuracy_with_mark"] = accuracy(model, marked_x / scale, marked_y)
    MODELS.mkdir(parents=True, exist_ok=True)
    if build is network:
        model = keras.Model(model.inputs, model.outputs, name=name)  # no optimiser state
    model.save(MODELS / f"{name}.keras")
    (MODELS / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(name, card)
    return card


RECIPES = {
    "shapes": lambda: train("shapes", "Shapes (offline)", mark="none", epochs=14),
    "shapes_shortcut": lambda: train("shapes_shortcut", "Shapes with a shortcut", mark="class", epochs=4),
    "shapes_vit": lambda: train("shapes_vit", "Shapes ViT (offline)", mark="none", epochs=40, build=vit_network,
                                preprocess="unit", count=16000),
}

if __name__ == "__main__":
    import sys

    for recipe in sys.argv[1:] or RECIPES:
        RECIPES[recipe]()
