"""Deletion/insertion AUC per method against the three baselines: on the five shared photos (MobileNetV2,
out_relu) and on fresh shapes images (the Shapes model, its default layer), each explained for its
predicted class (photos) or true class (shapes); with --sanity, the sanity check per method instead
(about 30 minutes, most of it Score-CAM).
Run: .venv/bin/python bench/faithfulness.py [--shapes N] [--sanity]"""

import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

from conftest import PHOTO_NAMES, PHOTOS  # noqa: E402
from dashboard.demo.shapes import dataset  # noqa: E402
from dashboard.engine import METHODS, TITLES, Explainer, metrics, read_photo  # noqa: E402

BASELINES = ("centre", "random", "sobel")


def score(explainer, photos, classes, methods):
    rows = {name: {"deletion": [], "insertion": []} for name in [*methods, *BASELINES]}
    for photo, class_index in zip(photos, classes):
        e = explainer.explain(photo, layers=None, class_index=class_index, method=methods[0])
        maps = {method: explainer.explain(photo, class_index=class_index, method=method).maps[explainer.default_layer]
                for method in methods}
        maps.update(metrics.baselines(photo))
        for name, saliency in maps.items():
            result = metrics.curves(explainer, photo, saliency, e.class_index)
            rows[name]["deletion"].append(result["deletion_auc"])
            rows[name]["insertion"].append(result["insertion_auc"])
    return {name: (np.mean(r["deletion"]), np.mean(r["insertion"])) for name, r in rows.items()}


def table(title, results):
    print(f"\n{title}\n\n| map | deletion AUC (lower is better) | insertion AUC (higher is better) |\n|---|---|---|")
    for name, (deletion, insertion) in sorted(results.items(), key=lambda item: -item[1][1]):
        print(f"| {TITLES.get(name, 'baseline: ' + name)} | {deletion:.3f} | {insertion:.3f} |")


def sanity_table(explainer, photos, methods):
    """Mean rank correlation with the original map after randomising the top 1, 3 and all blocks."""
    blocks = len(metrics.weight_groups(explainer.model.network))
    print("\nSanity check, MobileNetV2 at out_relu, the five shared photos: mean rank correlation with the "
          f"original map\n\n| map | top block randomised | top 3 blocks | all {blocks} blocks | a random other class |\n"
          "|---|---|---|---|---|")
    for method in [*methods, "sobel"]:  # Score-CAM alone takes about 25 minutes: 12 s a map, 23 maps a photo
        rows = [metrics.sanity(explainer, photo, "out_relu", method) for photo in photos]
        steps = [[step["rank_correlation"] for step in row["cascade"]] for row in rows]
        other = np.mean([row["random_class"]["rank_correlation"] for row in rows])
        print(f"| {TITLES.get(method, 'baseline: ' + method)} | {np.mean([s[0] for s in steps]):.2f} | "
              f"{np.mean([s[2] for s in steps]):.2f} | {np.mean([s[-1] for s in steps]):.2f} | {other:.2f} |")


def main():
    count = int(sys.argv[sys.argv.index("--shapes") + 1]) if "--shapes" in sys.argv else 200
    methods = [m for m in METHODS if m != "scorecam"] + ["scorecam"]
    if "--sanity" in sys.argv:
        sanity_table(Explainer("mobilenet_v2"), [read_photo(PHOTOS / name) for name in PHOTO_NAMES], methods)
        return
    photos = [read_photo(PHOTOS / name) for name in PHOTO_NAMES]
    table("MobileNetV2 at out_relu, the five shared photos (predicted class)",
          score(Explainer("mobilenet_v2"), photos, [None] * len(photos), methods))
    images, labels, _ = dataset(21, count)
    table(f"Shapes (offline) at its default layer, {count} fresh images (true class)",
          score(Explainer("shapes"), list(images), [int(label) for label in labels], methods))


if __name__ == "__main__":
    main()
