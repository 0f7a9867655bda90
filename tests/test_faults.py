"""Faults a server meets, answered in one plain sentence: caches that are read-only or damaged,
broken model uploads, a preprocessing that does not fit the model."""

import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import PHOTOS, ROOT, WEIGHTS, needs_weights
from dashboard.engine import Explainer, InputError, load_model, read_photo

SMALL_WEIGHTS = "mobilenet_2_5_128_tf.h5"  # MobileNet 0.25: 2 MB, quick to load


@needs_weights
def test_a_read_only_cache_that_holds_the_weights_is_used_as_it_is(monkeypatch):
    from keras.src.backend.config import keras_home
    from keras.src.utils import file_utils

    home = os.path.realpath(keras_home())
    real_access = os.access
    # Keras asks os.access whether it may write there (root may write anywhere, so pretend).
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if (
        mode & os.W_OK and os.path.realpath(path) == home) else real_access(path, mode, **kw))

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    explainer = Explainer(load_model("mobilenet"))
    assert explainer.predict(read_photo(PHOTOS / "cat.bmp"), top=1)[0][1] in ("Egyptian_cat", "tabby", "tiger_cat")


@needs_weights
def test_a_truncated_cached_weights_file_is_named_with_what_to_do(tmp_path):
    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    shutil.copy(WEIGHTS / "imagenet_class_index.json", home / "models")
    (home / "models" / SMALL_WEIGHTS).write_bytes((WEIGHTS / SMALL_WEIGHTS).read_bytes()[:100_000])
    result = subprocess.run([sys.executable, "-m", "dashboard.cli", "-i", str(PHOTOS / "cat.bmp"), "--model", "mobilenet"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "KERAS_HOME": str(home)})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"The cached weights file {home / 'models' / SMALL_WEIGHTS} is damaged" in result.stderr
    assert "delete it" in result.stderr


def _tiny_model(channels=3):
    inputs = keras.Input((16, 16, channels))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def test_damaged_keras_files_are_named_without_server_paths(tmp_path):
    path = tmp_path / "my_model.keras"
    _tiny_model().save(path)
    data = path.read_bytes()
    for name, content in (("garbage.keras", b"not a model"), ("cut_short.keras", data[: len(data) // 2])):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError) as error:
            load_model(tmp_path / name)
        assert str(error.value) == f"{name} is not a readable .keras file (is it damaged or cut short?)."


def test_a_preprocessing_that_does_not_fit_the_channels_is_refused_up_front(tmp_path, capfd):
    gray = _tiny_model(channels=1)
    for mode in ("caffe", "torch"):
        with pytest.raises(InputError, match=f"^'{mode}' preprocessing subtracts a mean per colour channel, but this "
                                             "model takes 1 channel: use tf, unit or none.$"):
            load_model(gray, preprocess=mode)
    gray.save(tmp_path / "gray.keras")
    from dashboard.cli import main

    assert main(["-i", str(PHOTOS / "cat.bmp"), "--model", str(tmp_path / "gray.keras"), "--preprocess", "caffe"]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "takes 1 channel" in err


def test_unit_preprocessing_gives_the_model_0_to_1_pixels():
    model = load_model(_tiny_model(), preprocess="unit")
    x = model.to_input(np.full((20, 30, 3), 255, np.uint8))
    assert x.shape == (1, 16, 16, 3) and np.allclose(x, 1.0)


@needs_weights
def test_the_dashboard_names_the_users_file_and_refuses_a_bad_fit(tmp_path):
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.run()
    at.sidebar.selectbox(key="model").set_value("own").run()
    at.sidebar.file_uploader(key="model_file").set_value([("class_project.keras", b"PK\x03\x04 cut", "application/octet-stream")]).run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error == ("class_project.keras is not a readable .keras file (is it damaged or cut short?). "
                     "Still showing MobileNetV2.")

    _tiny_model(channels=1).save(tmp_path / "gray.keras")
    at.sidebar.selectbox(key="preprocess").set_value("caffe").run()
    at.sidebar.file_uploader(key="model_file").set_value([("gray.keras", (tmp_path / "gray.keras").read_bytes(), "application/octet-stream")]).run()
    assert not at.exception and len(at.error) == 1 and "takes 1 channel" in at.error[0].value
    at.sidebar.selectbox(key="preprocess").set_value("unit").run()
    assert not at.exception and not at.error
    assert "gray" in at.markdown[0].value  # the model keeps its file's name
