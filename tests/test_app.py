"""The dashboard's main flows, through Streamlit's AppTest (the script runs in this process)."""

import json

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


def _overlays(at):
    """What each overlay component was sent (its key -> data): the photo's and maps' media URLs,
    captions, opacity, colormap, the scrubber's step."""
    return {element.proto.id.rsplit("-", 1)[-1]: json.loads(element.proto.json)
            for element in at.main.get("bidi_component")}


def _main_overlay(at):
    shown = _overlays(at)
    return shown.get("overlay_explore") or shown["overlay_present"]


def _overlay(at):
    """The main overlay's map (a content-addressed URL), or its photo's when the map is empty."""
    data = _main_overlay(at)
    return data["panels"][0]["map"] or data["photo"]


def _summary(at):
    return at.markdown[0].value  # "**MobileNetV2** · top-1: **Egyptian cat** 85%"


def test_first_load_shows_a_prediction_and_an_overlay(app):
    assert "top-1: **Egyptian cat**" in _summary(app)  # the preselected sample is the cat Chelsea
    assert app.sidebar.selectbox(key="class").value == 285
    assert app.sidebar.selectbox(key="layer").value == "out_relu"
    assert _overlay(app)
    assert not app.error
    assert app.query_params["layer"] == "out_relu" and app.query_params["class"] == "285"


def test_layer_class_and_method_changes_recompute(app, calls):
    before = _overlay(app)
    app.sidebar.selectbox(key="layer").set_value("block_13_expand").run()
    assert calls["explain"] == 1 and _overlay(app) != before
    app.sidebar.toggle(key="all_layers").set_value(True).run()  # every spatial layer, not only convolutions
    app.sidebar.selectbox(key="layer").set_value("block_12_add").run()
    assert calls["explain"] == 2
    app.sidebar.selectbox(key="class").set_value(281).run()
    assert calls["explain"] == 3 and "tabby (281)" in _overlay_caption(app)
    app.sidebar.selectbox(key="method").set_value("layercam").run()
    assert calls["explain"] == 4 and _overlay_caption(app).startswith("Layer-CAM")
    assert app.query_params["method"] == "layercam" and app.query_params["class"] == "281"
    assert not app.exception and not app.error


def _overlay_caption(at):
    # By caption, not by image: an empty map shows the photo itself, the same image as the original.
    return _main_overlay(at)["panels"][0]["caption"]


def test_opacity_and_colormap_never_call_the_model(app, calls):
    # The browser blends; what reaches the server is the component's final choice (browser test),
    # which lands in these session keys.
    before = _main_overlay(app)
    assert before["opacity"] == 0.5 and before["colormap"] == "jet" and set(before["tables"]) >= {"jet", "viridis"}
    assert len(before["tables"]["jet"]) == 256 * 3
    app.session_state["opacity"] = 0.8
    app.run()
    app.session_state["colormap"] = "viridis"
    app.run()
    after = _main_overlay(app)
    assert calls == {"predict": 0, "explain": 0}
    assert after["opacity"] == 0.8 and after["colormap"] == "viridis"
    assert after["panels"] == before["panels"] and after["photo"] == before["photo"]  # nothing sent again
    assert app.query_params["opacity"] == "0.8" and app.query_params["colormap"] == "viridis"


def _drop(at, name, data):
    """Drop a file on the first screen's drop zone (no source to choose first)."""
    at.main.get("file_uploader")[0].set_value((name, data, "image/jpeg")).run()


def test_a_broken_upload_shows_an_error_and_the_app_keeps_working(app):
    _drop(app, "broken.jpg", b"\xff\xd8\xff not really a jpeg")
    assert not app.exception
    assert len(app.error) == 1 and "broken.jpg" in app.error[0].value and "not an image" in app.error[0].value
    assert _overlay(app)  # still explaining the sample
    _drop(app, "hot_dog.jpg", (PHOTOS / "hot_dog.jpg").read_bytes())
    assert not app.error and "top-1: **hotdog**" in _summary(app)


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
    assert "MobileNetV2" in _summary(app) and _overlay(app)


def test_the_model_dropped_last_is_used_and_a_refused_one_keeps_the_one_shown(app, tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled)).save(tmp_path / "first.keras")
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled)).save(tmp_path / "second.keras")
    shifted = keras.layers.Lambda(lambda t: t + 1)(inputs)
    keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(shifted))).save(tmp_path / "evil.keras")
    first, second, evil = (("{}.keras".format(n), (tmp_path / f"{n}.keras").read_bytes()) for n in ("first", "second", "evil"))
    _own_model(app, first)
    # The uploader keeps what was dropped before, so each drop adds to the list.
    _own_model(app, first, evil)
    assert "Lambda" in app.error[0].value and "Still showing first" in app.error[0].value
    assert "first" in _summary(app) and _overlay(app)
    _own_model(app, first, evil, second)
    assert not app.error and "second" in _summary(app)
    assert len(app.sidebar.selectbox(key="class").options) == 3
    assert any("Using the files dropped last: second.keras" in c.value for c in app.sidebar.caption)


def _opened(params):
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.query_params.update(params)
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_shared_link_opens_the_same_view():
    at = _opened({"layer": "block_6_expand_relu", "class": "281", "method": "gradcam++", "opacity": "0.3"})
    assert at.sidebar.selectbox(key="layer").value == "block_6_expand_relu"
    assert at.sidebar.selectbox(key="class").value == 281
    assert at.sidebar.selectbox(key="method").value == "gradcam++"
    assert _main_overlay(at)["opacity"] == 0.3


def test_a_link_carries_the_photo_the_tab_and_the_compare_picks(app):
    # Make a view on the rocket sample, explained as "missile", on the Compare classes tab.
    app.sidebar.button(key="use_sample:rocket").click().run()
    app.sidebar.selectbox(key="class").set_value(657).run()  # missile
    app.sidebar.toggle(key="counterfactual").set_value(True).run()
    app.session_state["tab"] = "Compare classes"
    app.run()
    app.main.multiselect(key="compare_classes").set_value([657, 744]).run()
    link = dict(app.query_params)
    assert link["photo"] == "sample:rocket" and link["class"] == "657" and link["counterfactual"] == "1"
    assert link["tab"] == "Compare classes" and link["compare_classes"] == "657,744"

    opened = _opened(link)  # someone opens the link
    assert opened.session_state["photo_source"] == "sample:rocket"
    assert opened.sidebar.selectbox(key="class").value == 657
    assert opened.sidebar.toggle(key="counterfactual").value is True
    assert opened.session_state["tab"] == "Compare classes"
    assert opened.main.multiselect(key="compare_classes").value == [657, 744]
    captions = [panel["caption"] for panel in _overlays(opened)["overlay_compare_classes"]["panels"]]
    assert "missile (657)" in captions[0] and len(captions) == 2, captions


def test_a_link_to_a_drawn_shape_redraws_it():
    at = _opened({"model": "shapes", "photo": "drawn:5:mark"})
    assert at.session_state["shape_seed"] == 5 and at.session_state["with_mark"] is True
    assert "#5" in " ".join(image.proto.imgs[0].caption for image in at.main.get("image"))


def test_tabs_keep_their_picks_through_a_round_trip(app):
    app.session_state["tab"] = "Compare layers"
    app.run()
    app.main.multiselect(key="compare_layers").set_value(["block_1_expand_relu", "out_relu"]).run()
    app.session_state["tab"] = "Compare methods"
    app.run()
    app.main.multiselect(key="compare_methods").set_value(["gradcam", "hirescam", "xgradcam"]).run()
    app.session_state["tab"] = "Compare classes"
    app.run()
    app.main.multiselect(key="compare_classes").set_value([285, 287]).run()
    for tab in ("Explore", "How it works", "Compare layers", "Explore", "Compare methods", "Explore",
                "Compare classes"):
        app.session_state["tab"] = tab
        app.run()
        assert not app.exception and not app.error, tab
    assert app.main.multiselect(key="compare_classes").value == [285, 287]
    assert app.session_state["compare_layers"] == ["block_1_expand_relu", "out_relu"]
    assert app.session_state["compare_methods"] == ["gradcam", "hirescam", "xgradcam"]
    app.session_state["tab"] = "Compare layers"
    app.run()
    assert app.main.multiselect(key="compare_layers").value == ["block_1_expand_relu", "out_relu"]
    assert len(_overlays(app)["overlay_compare_layers"]["panels"]) == 2 and not app.main.get("alert")


def test_score_cam_then_an_opacity_step_keeps_working(app, calls):
    app.sidebar.selectbox(key="method").set_value("scorecam").run()
    assert not app.exception and _overlay_caption(app).startswith("Score-CAM")
    assert calls["explain"] == 1
    app.session_state["opacity"] = 0.7  # the overlay component's report
    app.run()
    assert not app.exception and not app.error and _overlay_caption(app).startswith("Score-CAM")
    assert calls["explain"] == 1  # the cached map, replayed without the progress bar
    app.session_state["tab"] = "Compare methods"
    app.run()
    app.main.multiselect(key="compare_methods").set_value(["gradcam", "scorecam"]).run()
    assert not app.exception and not app.error


def test_a_link_with_score_cam_opens():
    at = _opened({"method": "scorecam", "layer": "block_16_project"})
    assert not at.error and _overlay_caption(at).startswith("Score-CAM")


def test_class_search_finds_classes_as_people_write_them(app):
    app.sidebar.text_input(key="class_search").input("hot dog").run()
    assert app.sidebar.selectbox(key="class").options == ["hotdog (934)"]
    assert app.sidebar.selectbox(key="class").value == 934
    app.sidebar.text_input(key="class_search").input("egyptian CAT").run()
    assert app.sidebar.selectbox(key="class").options == ["Egyptian cat (285)"]


def test_presenter_mode_from_a_link(app):
    at = _opened({"present": "1"})
    assert at.sidebar.toggle(key="present").value is True
    big = [m.value for m in at.markdown if "present-caption" in m.value]
    assert big and "Where MobileNetV2 looks for <em>Egyptian cat</em> at out_relu" in big[0]
    assert [m.value for m in at.markdown if "present-line" in m.value][0].count("top-1") == 1
    assert not at.get("tabs") and _overlays(at)["overlay_present"]["large"] is True
    assert len(at.main.get("image")) == 1  # the photo beside the overlay


def test_the_layer_scrubber_steps_without_calling_the_model(app, calls):
    app.session_state["tab"] = "Through the layers"
    app.run()
    assert calls["explain"] == 1  # one pass over every convolution layer
    layers = Explainer("mobilenet_v2").conv_layers
    scrub = _overlays(app)["overlay_layers"]
    assert len(scrub["panels"]) == len(layers) > 40 and scrub["frame"] == len(layers) - 1  # all maps at once, at out_relu
    assert len({panel["map"] for panel in scrub["panels"] if panel["map"]}) > 40  # distinct maps (a few are empty)
    for layer, depth in (("Conv1", "early"), ("block_6_expand", "middle"), ("block_13_project", "late")):
        title = scrub["panels"][layers.index(layer)]["title"]
        assert f": {depth} · {layer} ·" in title, title
    app.session_state["scrub"] = "block_6_expand"  # the component's report of a step
    app.run()
    assert _overlays(app)["overlay_layers"]["frame"] == layers.index("block_6_expand")
    assert app.query_params["scrub"] == "block_6_expand" and calls["explain"] == 1


def test_own_model_without_a_file_explains_nothing(app):
    app.sidebar.selectbox(key="model").set_value("own").run()
    assert not app.exception and not app.main.get("image")
    assert "Drop your model file" in app.info[0].value


def test_a_model_that_cannot_load_returns_the_picker_to_the_model_shown(app, monkeypatch):
    import keras
    import streamlit as st

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    app.sidebar.selectbox(key="model").set_value("resnet50").run()
    assert not app.exception
    assert app.sidebar.selectbox(key="model").value == "mobilenet_v2"
    (warning,) = [w.value for w in app.warning]
    assert "could not be downloaded" in warning and "Still showing MobileNetV2" in warning
    assert "http" not in warning and "Errno" not in warning
    st.cache_resource.clear()


def test_the_picker_says_which_models_need_a_download(app):
    options = app.sidebar.selectbox(key="model").options
    assert "MobileNetV2 · ready" in options and "VGG16 · 528 MB download" in options


def test_every_view_renders(app):
    for tab in ["Through the layers", "Compare layers", "Compare classes", "Compare methods", "How it works"]:
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
    assert "converted_keras" in _summary(app) or "keras_model" in _summary(app)
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


def test_the_faithfulness_tab_scores_every_method_and_runs_the_sanity_check(app):
    app.session_state["tab"] = "Faithfulness"
    app.run()
    assert not app.exception and not app.error
    (table,) = app.dataframe
    frame = table.value
    assert len(frame) == 9  # six methods (Score-CAM only when chosen) and three baselines
    assert {"baseline: centre", "baseline: random", "baseline: sobel", "Grad-CAM"} <= set(frame["map"])
    assert list(frame["insertion AUC ↑"]) == sorted(frame["insertion AUC ↑"], reverse=True)  # ranked
    app.toggle(key="run_sanity").set_value(True).run()
    assert not app.exception and not app.error
    assert any("rank correlation" in c.value for c in app.caption)
    captions = [image.proto.imgs[0].caption for image in app.main.get("image")]
    assert "the trained network" in captions and any(c.startswith("down to predictions") for c in captions)
    # The rank-correlation curve runs from the top block down, as randomised (not in alphabetical order).
    orders = [json.loads(chart.proto.spec).get("encoding", {}).get("x", {}).get("sort") for chart in app.main.get("vega_lite_chart")]
    assert ["predictions", "Conv_1", "block_16", "block_15"] in [order[:4] for order in orders if order]


def test_with_score_cam_chosen_it_is_scored_and_the_sanity_check_says_it_uses_grad_cam(app):
    app.session_state["method"] = "scorecam"
    app.session_state["layer"] = "block_16_project"  # 320 channels: Score-CAM in seconds
    app.session_state["tab"] = "Faithfulness"
    app.run()
    assert not app.exception and not app.error
    (table,) = app.dataframe
    assert len(table.value) == 10 and "Score-CAM" in set(table.value["map"])
    app.toggle(key="run_sanity").set_value(True).run()
    assert not app.exception and not app.error
    assert any("this uses Grad-CAM" in c.value for c in app.caption)


def test_which_layer_scores_every_convolution_layer_first_to_last(app):
    """On a drawn shape (ground truth known): the pointing game and energy inside, per layer, in graph order."""
    app.sidebar.button(key="use_drawn").click().run()
    app.session_state["tab"] = "Compare layers"
    app.run()
    app.toggle(key="score_layers").set_value(True).run()
    assert not app.exception and not app.error
    explainer = Explainer("mobilenet_v2")
    convs = [name.split("/")[-1] for name in explainer.conv_layers]
    (chart,) = [c for c in app.main.get("vega_lite_chart")
                if json.loads(c.proto.spec).get("encoding", {}).get("x", {}).get("sort")]
    spec = json.loads(chart.proto.spec)
    assert spec["encoding"]["x"]["sort"] == convs  # Conv1 ... out_relu, not alphabetical
    series = {row["series"] for row in _chart_rows(chart, spec)}
    assert series == {"pointing game", "energy inside"}
    assert all(0 <= row["value"] <= 1 for row in _chart_rows(chart, spec))
    rows = [row for row in _chart_rows(chart, spec) if row["series"] == "energy inside"]
    best = max(rows, key=lambda row: row["value"])  # the peak is named under the chart
    assert any(c.value.startswith(f"Highest energy inside: **{best['step']}** ({best['value']:.2f})") for c in app.caption)


def _chart_rows(chart, spec):
    """The rows of a chart's data (Streamlit sends them as Arrow tables beside the spec)."""
    import pyarrow as pa

    datasets = chart.proto.datasets or []
    table = pa.ipc.open_stream(datasets[0].data.data).read_all() if datasets else pa.ipc.open_stream(chart.proto.data.data).read_all()
    return table.to_pylist()
