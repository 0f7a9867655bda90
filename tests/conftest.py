"""Shared fixtures: the offline Keras cache and the real photos live in ../shared, never in the repo."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shared() -> Path:
    for candidate in (os.environ.get("SHARED"), ROOT.parent / "shared", "/work/shared"):
        if candidate and (Path(candidate) / "photos").is_dir():
            return Path(candidate)
    return ROOT.parent / "shared"


SHARED = _shared()
PHOTOS = SHARED / "photos"
PHOTO_NAMES = ("bird.bmp", "cat.bmp", "dragonfly.bmp", "grace_hopper.bmp", "hot_dog.jpg")
WEIGHTS = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def _weights_present() -> bool:
    return (WEIGHTS / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5").is_file() and PHOTOS.is_dir()


def pytest_sessionstart(session):
    # On CI a missing cache is a failure, not a reason to skip the tests that matter most.
    if os.environ.get("CI") == "true" and not _weights_present():
        pytest.exit(f"CI needs the ImageNet weights in {WEIGHTS} and photos in {PHOTOS}.", returncode=1)


needs_weights = pytest.mark.skipif(not _weights_present(), reason="no offline Keras cache / shared photos here")


@pytest.fixture(scope="session")
def mobilenet():
    from dashboard.engine import load_model

    return load_model("mobilenet_v2")


@pytest.fixture(scope="session")
def explainer(mobilenet):
    from dashboard.engine import Explainer

    return Explainer(mobilenet)


@pytest.fixture(scope="session")
def linear_mobilenet():
    """MobileNetV2 built by Keras with a linear head: the references' own way to get logits."""
    import keras

    return keras.applications.MobileNetV2(weights="imagenet", classifier_activation=None)
