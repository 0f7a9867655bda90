"""Does each method point at the object? On freshly drawn shapes, where we know the answer:

    python -m dashboard.demo.evaluate --model shapes --count 200

prints, per method and layer, the pointing-game accuracy (the map's maximum falls on the object,
within a few pixels, as in the Grad-CAM paper's pointing game) and the share of the map's energy
inside the object's mask.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from dashboard.demo.shapes import dataset  # noqa: E402
from dashboard.engine.metrics import TOLERANCE, energy_inside, pointing_hit  # noqa: E402

def evaluate(explainer, layers, methods, count: int, seed: int, mark: str = "none") -> dict:
    """{(method, layer): (pointing accuracy, mean energy inside the mask)} over `count` fresh images,
    each explained for its true class."""
    images, labels, masks = dataset(seed, count, mark=mark)
    results = {}
    for method in methods:
        hits = {layer: [] for layer in layers}
        energy = {layer: [] for layer in layers}
        for image, label, mask in zip(images, labels, masks):
            e = explainer.explain(image, layers=layers, class_index=int(label), method=method)
            for layer in layers:
                hits[layer].append(pointing_hit(e.maps[layer], mask))
                energy[layer].append(energy_inside(e.maps[layer], mask))
        for layer in layers:
            results[method, layer] = (float(np.mean(hits[layer])), float(np.mean(energy[layer])))
    return results


def main(argv=None):
    from dashboard.engine import METHODS, Explainer, load_model

    parser = argparse.ArgumentParser(prog="python -m dashboard.demo.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes", help="a shipped shapes model (default: shapes)")
    parser.add_argument("--count", type=int, default=200, help="held-out images (default: 200)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the held-out images (training used 1-3)")
    parser.add_argument("--method", action="append", choices=list(METHODS), help="default: all")
    parser.add_argument("--layer", action="append", help="default: where each stage of the network ends")
    args = parser.parse_args(argv)
    explainer = Explainer(load_model(args.model))
    layers = args.layer or explainer.stage_ends(4)
    methods = args.method or list(METHODS)
    results = evaluate(explainer, layers, methods, args.count, args.seed)
    print(f"{args.model}: {args.count} held-out images (seed {args.seed}), each explained for its true class; "
          f"pointing tolerance {TOLERANCE} px\n")
    print("| method | layer | pointing game | energy inside the object |")
    print("|---|---|---|---|")
    for (method, layer), (pointing, energy) in results.items():
        print(f"| {method} | {layer} | {pointing:.1%} | {energy:.1%} |")


if __name__ == "__main__":
    main()
