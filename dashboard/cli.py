"""Grad-CAM from the command line: python -m dashboard.cli --input PHOTO [options]."""

import argparse
import contextlib
import json
import os
import sys
import warnings
from pathlib import Path


@contextlib.contextmanager
def _quiet_stderr():
    """TensorFlow's C++ start-up lines ignore every log setting: hide them, keep ours."""
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# -o writes the format its extension names (matplotlib's writers); --save-map writes NumPy's .npz.
FIGURE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".tif": "tiff", ".tiff": "tiff",
                  ".pdf": "pdf", ".svg": "svg"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and status 2, instead of usage plus error
        self.exit(2, f"error: {message}\n")


def _arguments(argv):
    parser = _Parser(prog="python -m dashboard.cli", description="Where does the classifier look? Grad-CAM and friends for Keras CNNs and Vision Transformers.")
    parser.add_argument("--input", "-i", help="photo to explain (any format Pillow reads, and HEIC/HEIF)")
    parser.add_argument("--model", "-m", default="mobilenet_v2",
                        help="zoo name, a .keras/.h5 file, a Teachable Machine converted_keras.zip, or a keras-hub preset "
                             "(its folder, or a kaggle:// handle) (default: mobilenet_v2)")
    parser.add_argument("--labels", metavar="FILE", help="class names: labels.txt, one per line or Teachable Machine's 'index name'")
    parser.add_argument("--output-name", metavar="NAME", help="for models with several outputs: which one to explain (name or index)")
    parser.add_argument("--layer", "-l", action="append", help="layer to explain; repeat for several (default: the last spatial layer)")
    parser.add_argument("--class", dest="class_", metavar="INDEX|LABEL", help="class to explain (default: the top prediction)")
    parser.add_argument("--method", default="gradcam",
                        help="gradcam, gradcam++, hirescam, xgradcam, layercam, eigencam, scorecam, or for transformers rollout")
    parser.add_argument("--fusion", choices=["mean", "max"], default="mean", help="rollout: how heads are fused (default: mean)")
    parser.add_argument("--discard", type=float, default=0.9, help="rollout: share of weakest attention dropped, 0..1 (default: 0.9)")
    parser.add_argument("--counterfactual", action="store_true", help="show what speaks against the class")
    parser.add_argument("--output", "-o", metavar="FIGURE.png",
                        help=f"write the side-by-side figure (original | overlays): {', '.join(FIGURE_FORMATS)}")
    parser.add_argument("--save-map", metavar="MAPS.npz", help="write <layer>/map and <layer>/raw arrays to a .npz file")
    parser.add_argument("--json", action="store_true", help="print predictions, class, layers, method and timings as JSON")
    parser.add_argument("--list-layers", action="store_true", help="print the layers that can be explained and exit")
    parser.add_argument("--preprocess", metavar="MODE",
                        help="for model files: tf, caffe, torch or none (default: tf for Teachable Machine exports, else none)")
    parser.add_argument("--metrics", action="store_true",
                        help="with --json: deletion/insertion curves and AUCs, baselines and the sanity check per layer")
    parser.add_argument("--colormap", default="jet", help="jet, viridis, inferno or turbo (default: jet)")
    parser.add_argument("--opacity", type=float, default=0.5, help="heatmap opacity in the figure, 0..1 (default: 0.5)")
    args = parser.parse_args(argv)
    if not args.list_layers and not args.input:
        parser.error("--input PHOTO is required")
    if not 0 <= args.discard < 1:
        parser.error("--discard must be at least 0 and below 1")
    if not 0 <= args.opacity <= 1:
        parser.error("--opacity must be between 0 and 1")
    if args.metrics and not args.json:
        parser.error("--metrics goes with --json")
    if args.output and Path(args.output).suffix.lower() not in FIGURE_FORMATS:
        parser.error(f"-o writes a figure as {', '.join(FIGURE_FORMATS)}: {args.output} has none of these extensions")
    if args.save_map and Path(args.save_map).suffix.lower() != ".npz":
        parser.error(f"--save-map writes a .npz file: {args.save_map} does not end in .npz")
    return args


def _write(path: str, write) -> None:
    """`write(file)` into exactly `path`, through a temporary file beside it that is renamed into place
    once complete: a full disk or a Ctrl-C leaves no partial file. A device or a pipe is written directly."""
    from .engine import InputError

    target = Path(path)
    direct = target.exists() and not target.is_file() and not target.is_dir()
    partial = target if direct else target.with_name(f".{target.name}.partial")
    try:
        try:
            with open(partial, "wb") as file:
                write(file)
            if not direct:
                os.replace(partial, target)
        finally:
            if not direct:
                partial.unlink(missing_ok=True)
    except OSError as error:
        raise InputError(f"Could not write {path}: {error.strerror or error}.") from None


def run(args) -> None:
    from .engine import METHODS, Explainer, InputError, load_model, metrics, read_photo
    from .engine.images import frames_note
    from .engine.limits import LAYERS_PER_RUN
    from .engine.render import COLORMAPS, blend, side_by_side

    if args.method not in METHODS:  # checked before the slow model load
        raise InputError(f"Unknown method '{args.method}': use one of {', '.join(METHODS)}.")
    if args.colormap not in COLORMAPS:
        raise InputError(f"Unknown colormap '{args.colormap}': use one of {', '.join(COLORMAPS)}.")
    if args.layer and len(set(args.layer)) > LAYERS_PER_RUN:
        raise InputError(f"{len(set(args.layer))} layers were asked for: the limit is {LAYERS_PER_RUN} per run.")
    photo = read_photo(args.input) if args.input else None
    note = frames_note(args.input) if args.input else None
    if note and not args.json:
        print(f"note: {note}", file=sys.stderr)
    model = load_model(args.model, preprocess=args.preprocess, labels=args.labels, output=args.output_name)
    explainer = Explainer(model)
    if args.list_layers:
        for name in explainer.layers:
            print(name)
        return
    class_index = None if args.class_ is None else explainer.class_index(args.class_)
    predictions = explainer.predict(photo)
    options = {"fusion": args.fusion, "discard": args.discard} if args.method == "rollout" else None
    explanation = explainer.explain(photo, args.layer, class_index, args.method, args.counterfactual,
                                    method_options=options)

    if args.output:
        overlays = {layer: blend(photo, heat, args.opacity, args.colormap) for layer, heat in explanation.maps.items()}
        title = f"{explanation.label} ({explanation.class_index}) - {args.method}{' counterfactual' if args.counterfactual else ''}"
        figure = side_by_side(photo, overlays, title)
        _write(args.output, lambda file: figure.savefig(file, format=FIGURE_FORMATS[Path(args.output).suffix.lower()], dpi=100))
    if args.save_map:
        import numpy as np

        arrays = {}
        for layer in explanation.maps:
            arrays[f"{layer}/map"] = explanation.maps[layer]
            arrays[f"{layer}/raw"] = explanation.raw[layer]
        _write(args.save_map, lambda file: np.savez(file, **arrays))
    if args.json:
        print(json.dumps({
            "model": explainer.model.name,
            "photo_note": note,
            "head": {"output": explainer.model.head.layer.name, "kind": explainer.model.head.kind},
            "predictions": [{"class_index": i, "label": label, "probability": p} for i, label, p in predictions],
            "class_index": explanation.class_index,
            "label": explanation.label,
            "layers": list(explanation.maps),
            "method": args.method,
            "counterfactual": args.counterfactual,
            "evidence": {layer: explanation.has_evidence(layer) for layer in explanation.maps},
            "timings": explanation.timings,
            **({"metrics": {layer: metrics.report(explainer, photo, explanation, layer) for layer in explanation.maps}}
               if args.metrics else {}),
        }, indent=2))
    else:
        for i, label, p in predictions:
            print(f"{p:7.2%}  {label} ({i})")
        print(f"explained: {explanation.label} ({explanation.class_index}) with {args.method}")
        for layer in explanation.maps:
            note = "" if explanation.has_evidence(layer) else "  (no positive evidence for this class)"
            print(f"  {layer}{note}")


def main(argv=None) -> int:
    args = _arguments(argv)
    warnings.filterwarnings("ignore")  # library warnings would add lines to our one-line errors
    try:
        with _quiet_stderr():
            from .engine import InputError
        run(args)
    except KeyboardInterrupt:
        print("interrupted: no file was left half-written", file=sys.stderr)
        return 130
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. --output into a folder that does not exist
        print(f"error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
