"""The dashboard's main flows, through Streamlit's AppTest (the script runs in this process)."""

import pytest
from streamlit.testing.v1 import AppTest

from conftest import PHOTOS, ROOT, needs_weights
from dashboard.engine import Explainer

pytestmark = needs_weights


@pytest.fixture
def calls(monkeypatch):
    """Counts every model call (predict and explain) the app makes."""
    counts = {"predict": 0, "explain": 0}
    for name in counts:
        original = getattr(Explainer, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Explainer, name, counted)
    return counts


@pytest.fixture
def app():
    import streamlit as st

    from dashboard import compute

    st.cache_data.clear()  # every test counts model calls from cold caches (models stay loaded)
    compute.RESULTS.clear()
    compute.PHOTOS.clear()
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    return at


def _images(at):
    """(url, caption) of every image shown in the main area."""
    return [(image.proto.imgs[0].url, image.proto.imgs[0].caption) for image in at.main.get("image")]


def _overlay(at):
    return next(url for url, caption in _images(at) if caption.startswith(("Grad-CAM", "Grad-CAM++", "HiResCAM",
                                                                               "XGrad-CAM", "Layer-CAM", "Eigen-CAM", "Score-CAM")))


def test_first_load_shows_a_prediction_and_an_overlay(app):
    assert "top-1:** Egyptian_cat" in app.markdown[0].value  # the preselected sample is the cat Chelsea
    assert app.sidebar.selectbox(key="class").value == 285
    assert app.sidebar.selectbox(key="layer").value == "out_relu"
    assert _overlay(app)
    assert not app.error
    assert app.query_params["layer"] == "out_relu" and app.query_params["class"] == "285"


def test_layer_class_and_method_changes_recompute(app, calls):
    before = _overlay(app)
    app.sidebar.selectbox(key="resolution").set_value("14×14").run()
    assert app.sidebar.selectbox(key="layer").value == "block_13_expand_relu"  # the last 14x14 layer
    assert calls["explain"] == 1 and _overlay(app) != before
    app.sidebar.selectbox(key="layer").set_value("block_12_add").run()
    assert calls["explain"] == 2
    app.sidebar.selectbox(key="class").set_value(281).run()
    assert calls["explain"] == 3 and "tabby (281)" in _overlay_caption(app)
    app.sidebar.selectbox(key="method").set_value("layercam").run()
    assert calls["explain"] == 4 and _overlay_caption(app).startswith("Layer-CAM")
    assert app.query_params["method"] == "layercam" and app.query_params["class"] == "281"
    assert not app.exception and not app.error


def _overlay_caption(at):
    return next(caption for url, caption in _images(at) if url == _overlay(at))


def test_opacity_and_colormap_never_call_the_model(app, calls):
    before = _overlay(app)
    app.sidebar.slider(key="opacity").set_value(0.8).run()
    after_opacity = _overlay(app)
    app.sidebar.selectbox(key="colormap").set_value("viridis").run()
    assert calls == {"predict": 0, "explain": 0}
    assert before != after_opacity != _overlay(app)  # the overlay itself did change
    assert app.query_params["opacity"] == "0.8"


def test_a_broken_upload_shows_an_error_and_the_app_keeps_working(app):
    app.sidebar.radio(key="source").set_value("Upload").run()
    app.sidebar.file_uploader(key="upload").set_value(("broken.jpg", b"\xff\xd8\xff not really a jpeg", "image/jpeg")).run()
    assert not app.exception
    assert len(app.error) == 1 and "broken.jpg" in app.error[0].value and "not an image" in app.error[0].value
    assert _overlay(app)  # still explaining the sample
    app.sidebar.file_uploader(key="upload").set_value(("cat.bmp", (PHOTOS / "cat.bmp").read_bytes(), "image/bmp")).run()
    assert not app.error and "Egyptian_cat" in app.markdown[0].value


def test_a_refused_model_file_explains_why_and_keeps_the_previous_model(app, tmp_path):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t + 1)(inputs)
    keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))).save(tmp_path / "evil.keras")
    app.sidebar.selectbox(key="model").set_value("own").run()
    app.sidebar.file_uploader(key="model_file").set_value(
        ("evil.keras", (tmp_path / "evil.keras").read_bytes(), "application/octet-stream")).run()
    assert not app.exception
    assert "refused" in app.error[0].value and "Lambda" in app.error[0].value
    assert "mobilenet_v2" in app.markdown[0].value and _overlay(app)


def test_a_shared_link_opens_the_same_view():
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.query_params.update({"layer": "block_6_expand_relu", "class": "281", "method": "gradcam++", "opacity": "0.3"})
    at.run()
    assert at.sidebar.selectbox(key="layer").value == "block_6_expand_relu"
    assert at.sidebar.selectbox(key="resolution").value == "28×28"
    assert at.sidebar.selectbox(key="class").value == 281
    assert at.sidebar.selectbox(key="method").value == "gradcam++"
    assert at.sidebar.slider(key="opacity").value == 0.3


def test_every_view_renders(app):
    for tab in ["Compare layers", "Compare classes", "Compare methods", "How it works"]:
        app.session_state["tab"] = tab
        app.run()
        assert not app.exception and not app.error, tab
    assert len(app.main.get("image")) >= 6  # How it works: channels, sums, overlay
    assert any("alpha" in latex.value for latex in app.get("latex"))


def _own_model(app, *files):
    app.sidebar.selectbox(key="model").set_value("own").run()
    app.sidebar.file_uploader(key="model_file").set_value(
        [(name, data, "application/octet-stream") for name, data in files]).run()
    assert not app.exception, app.exception


def _teachable_files():
    from conftest import SHARED

    folder = SHARED / "models" / "teachable_machine_water"
    if not (folder / "keras_model.h5").is_file():
        pytest.skip("no shared Teachable Machine export")
    return (folder / "keras_model.h5").read_bytes(), (folder / "labels.txt").read_bytes()


@pytest.mark.parametrize("packed", ["zip", "h5 and labels.txt"])
def test_a_teachable_machine_export_is_explained_with_its_labels(app, packed):
    import io
    import zipfile

    model, labels = _teachable_files()
    if packed == "zip":
        data = io.BytesIO()
        with zipfile.ZipFile(data, "w") as archive:
            archive.writestr("keras_model.h5", model)
            archive.writestr("labels.txt", labels)
        _own_model(app, ("converted_keras.zip", data.getvalue()))
    else:
        _own_model(app, ("keras_model.h5", model), ("labels.txt", labels))
    assert not app.error, [e.value for e in app.error]
    picker = app.sidebar.selectbox(key="class")
    assert sorted(picker.options) == ["5 Galoon (0)", "500ML (1)"]
    assert app.sidebar.selectbox(key="layer").value.endswith("out_relu")
    assert "converted_keras" in app.markdown[0].value or "keras_model" in app.markdown[0].value
    assert _overlay(app) and "2 classes (multi-class)" in app.sidebar.caption[-1].value


def test_a_binary_model_offers_both_sides_and_several_outputs_a_choice(app, tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="is_cat")(pooled)).save(tmp_path / "binary.keras")
    _own_model(app, ("binary.keras", (tmp_path / "binary.keras").read_bytes()), ("labels.txt", b"dog\ncat\n"))
    assert not app.error
    assert sorted(app.sidebar.selectbox(key="class").options) == ["cat (1)", "dog (0)"]
    app.sidebar.selectbox(key="class").set_value(0).run()
    assert "dog (0)" in _overlay_caption(app)

    box = keras.layers.Dense(4, name="box")(pooled)
    kind = keras.layers.Dense(3, activation="softmax", name="kind")(pooled)
    keras.Model(inputs, [box, kind]).save(tmp_path / "two_heads.keras")
    _own_model(app, ("two_heads.keras", (tmp_path / "two_heads.keras").read_bytes()))
    assert not app.error, [e.value for e in app.error]
    assert app.sidebar.selectbox(key="model_output").value == "kind"
    assert len(app.sidebar.selectbox(key="class").options) == 3
    app.sidebar.selectbox(key="model_output").set_value("box").run()
    assert not app.exception and len(app.sidebar.selectbox(key="class").options) == 4
