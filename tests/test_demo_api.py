"""The Gradio demo through its API (gradio_client) on 127.0.0.1: real photos in, PNGs out, bad inputs refused."""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from stargan.face import DEFAULT_UPSAMPLE
from stargan.inference import DEFAULT_WEIGHTS

from conftest import free_port, png_header

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "demo" / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def app():
    """The demo on a free loopback port in this process (a server thread), with its shared Editor."""
    if not (DEFAULT_WEIGHTS / "config.json").is_file():
        pytest.skip(f"the shipped model is not at {DEFAULT_WEIGHTS}: train one and copy its export folder there")
    pytest.importorskip("gradio_client")
    sys.path.insert(0, str(ROOT / "demo"))
    import app as demo_app

    demo = demo_app.create(DEFAULT_WEIGHTS)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                max_file_size=demo_app.MAX_FILE_SIZE)
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app[1], verbose=False)


def small_model(folder: Path, provenance: dict | None = None) -> Path:
    """A small random weights folder: five CelebA attributes, 32 px."""
    import torch

    from stargan.config import ModelConfig
    from stargan.domains import LabelSpace, celeba
    from stargan.models import build_discriminator, build_generator
    from stargan.weights import save_weights

    torch.manual_seed(0)
    config = ModelConfig(LabelSpace((celeba(),)), image_size=32, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8,
                         d_repeat_num=2)
    return save_weights(folder, build_generator(config), config, build_discriminator(config), provenance=provenance)


def _edit(client, path: Path | str, settings: dict, face: str = "0", mode: str = "delta"):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), json.dumps(settings), face, mode, api_name="/edit")


def _path(value) -> str:
    """A file output as gradio_client returns it: a path, or a dict holding one."""
    return value.get("path", value) if isinstance(value, dict) else value


def _edited(slider) -> str:
    """The edited photo of the page's before | after slider."""
    return _path(slider[1])


def test_photo_in_png_out_matches_library(app, client):
    demo, _ = app
    photo_path, face_path = _edit(client, ASTRONAUT, {"Blond_Hair": 1.0})
    with Image.open(photo_path) as im:
        assert im.format == "PNG"
        out = np.asarray(im.convert("RGB"))
    original = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    assert out.shape == original.shape
    editor = demo.models.get(None)
    expected = editor.edit(editor.prepare(ASTRONAUT), {"Blond_Hair": 1.0})
    x0, y0, x1, y1 = (int(v) for v in editor.prepare(ASTRONAUT).faces[0].face.box)
    region = np.abs(out[y0:y1, x0:x1].astype(int) - original[y0:y1, x0:x1])
    assert region.mean() > 1.0  # the face region changed
    assert np.abs(out.astype(int) - expected.photo).max() <= 1  # exactly what the library makes
    with Image.open(face_path) as im:
        assert np.abs(np.asarray(im.convert("RGB")).astype(int) - expected.after[0]).max() <= 1


def test_live_slider_flow(app, client):
    demo, _ = app
    """The page's own endpoints: prepare on upload, then a slider edit (photo already prepared)."""
    from gradio_client import handle_file

    prepared = client.predict(handle_file(str(ASTRONAUT)), api_name="/prepare")
    face_update, before, after, photo, status = prepared[:5]
    assert "1 face found" in status
    n = (len(prepared) - 5) // 2
    values = [u["value"] if isinstance(u, dict) else u for u in prepared[5:5 + n]]
    after_0, photo_0 = client.predict("Face 1", "delta", DEFAULT_UPSAMPLE, 1.0, True, True, *values, api_name="/edit_live")
    original = np.asarray(Image.open(ASTRONAUT).convert("RGB")).astype(int)
    before_0, photo_0 = (_path(v) for v in photo_0)  # the zoomable before | after slider
    assert np.abs(np.asarray(Image.open(photo_0).convert("RGB")) - original).mean() < 2  # a JPEG preview, unedited
    assert np.abs(np.asarray(Image.open(before_0).convert("RGB")) - original).mean() < 2  # the photo itself
    assert Image.open(photo_0).size == Image.open(ASTRONAUT).size  # at the photo's full resolution
    assert Image.open(after_0).size[0] > 2 * demo.models.get(None).image_size  # the face at the photo's resolution
    sys.path.insert(0, str(ROOT / "demo"))
    import app as demo_app

    values[demo_app.ALL_NAMES.index("Blond_Hair")] = 1.0
    after_1, photo_1 = client.predict("Face 1", "delta", DEFAULT_UPSAMPLE, 1.0, True, True, *values, api_name="/edit_live")
    a0, a1 = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (after_0, after_1))
    assert np.abs(a1 - a0).mean() > 1.0
    # "Save as PNG": the full photo, losslessly, exactly what the library makes for the same settings
    png = client.predict("Face 1", "delta", DEFAULT_UPSAMPLE, 2.0, True, True, *values, api_name="/save_png")
    png = png.get("value", png) if isinstance(png, dict) else png  # an update that also shows the file
    png = png.get("path", png) if isinstance(png, dict) else png
    with Image.open(png) as im:
        assert im.format == "PNG"
        saved = np.asarray(im.convert("RGB")).astype(int)
    editor = demo.models.get(None)
    expected = editor.edit(editor.prepare(ASTRONAUT), {"Blond_Hair": 1.0}, strength=2.0)
    assert np.abs(saved - expected.photo).max() <= 1
    # "Related attributes follow": unticked, a gender edit is the lone flip the library makes with related=False;
    # ticked, her make-up comes off too, which is a different picture
    values = [u["value"] if isinstance(u, dict) else u for u in prepared[5:5 + n]]
    values[demo_app.ALL_NAMES.index("Male")] = 1.0
    saved = {}
    for related in (False, True):
        png = client.predict("Face 1", "delta", DEFAULT_UPSAMPLE, 1.0, related, True, *values,
                             api_name="/save_png")
        png = png.get("value", png) if isinstance(png, dict) else png
        with Image.open(png.get("path", png) if isinstance(png, dict) else png) as im:
            saved[related] = np.asarray(im.convert("RGB")).astype(int)
    lone = editor.edit(editor.prepare(ASTRONAUT), {"Male": 1.0}, related=False)
    assert np.abs(saved[False] - lone.photo).max() <= 1
    assert np.abs(saved[True] - saved[False]).mean() > 0.2
    # "Keep each edit in its place" unticked: G's change wherever G makes it, as the library's regions=False
    values = [u["value"] if isinstance(u, dict) else u for u in prepared[5:5 + n]]
    values[demo_app.ALL_NAMES.index("Gray_Hair")] = 1.0
    png = client.predict("Face 1", "delta", DEFAULT_UPSAMPLE, 1.0, True, False, *values, api_name="/save_png")
    png = png.get("value", png) if isinstance(png, dict) else png
    with Image.open(png.get("path", png) if isinstance(png, dict) else png) as im:
        anywhere = np.asarray(im.convert("RGB")).astype(int)
    plain = editor.edit(editor.prepare(ASTRONAUT), {"Gray_Hair": 1.0}, regions=False)
    kept = editor.edit(editor.prepare(ASTRONAUT), {"Gray_Hair": 1.0})
    assert np.abs(anywhere - plain.photo).max() <= 1
    assert np.abs(anywhere - kept.photo).mean() > 0.2


@pytest.mark.parametrize("kind, expected", [
    ("text", "not an image"),
    ("no_face", "no face found"),
    ("tiny", "too small"),
    ("bomb", "too large"),
    ("bomb_mid", "megapixels"),
])
def test_bad_inputs_readable_and_still_serving(client, tmp_path, kind, expected):
    from gradio_client.exceptions import AppError

    path = tmp_path / {"text": "notes.jpg", "no_face": "coffee.png", "tiny": "dot.png", "bomb": "bomb.png",
                       "bomb_mid": "bomb.png"}[kind]
    if kind == "text":
        path.write_text("this is a text file renamed .jpg")
    elif kind == "no_face":
        Image.fromarray(skimage.data.coffee()).save(path)
    elif kind == "tiny":
        Image.new("RGB", (1, 1), (200, 150, 120)).save(path)
    elif kind == "bomb":
        path.write_bytes(png_header(100_000, 100_000))  # Pillow's own bomb check fires while Gradio opens it
    else:
        path.write_bytes(png_header(10_000, 9_000))  # 90 MP: passes Pillow, refused by our limit
    with pytest.raises(AppError) as info:
        _edit(client, path, {"Blond_Hair": 1.0})
    assert expected in str(info.value), str(info.value)
    photo_path, _ = _edit(client, ASTRONAUT, {"Young": 0.0})  # and the app keeps serving
    assert Path(photo_path).is_file()


def test_bad_settings_are_readable(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not a label of this model"):
        _edit(client, ASTRONAUT, {"Purple_Hair": 1.0})
    with pytest.raises(AppError, match="does not exist"):
        _edit(client, ASTRONAUT, {"Blond_Hair": 1.0}, face="3")


def test_small_load(app):
    """4 concurrent clients x 3 edits each on loopback: no errors (benchmarks/demo_load.py runs 8 x 10)."""
    from gradio_client import Client

    def worker(i: int) -> list[float]:
        c = Client(app[1], verbose=False)
        times = []
        for j in range(3):
            t0 = time.perf_counter()
            _edit(c, ASTRONAUT, {"Blond_Hair": (i + j) % 2 * 1.0, "Male": 0.5})
            times.append(time.perf_counter() - t0)
        return times

    errors: list[BaseException] = []
    lock = threading.Lock()

    def safe(i: int) -> list[float]:
        try:
            return worker(i)
        except BaseException as e:  # noqa: BLE001 - collected and reported
            with lock:
                errors.append(e)
            return []

    with ThreadPoolExecutor(4) as pool:
        times = [t for ts in pool.map(safe, range(4)) for t in ts]
    assert not errors, errors
    assert len(times) == 12 and statistics.median(times) < 30


def test_controls_follow_the_label_space(app, tmp_path):
    """Every name of the model gets a visible slider and checkbox, grouped; names it lacks are hidden; labels
    carry the plain grade from the model card's realism and success, the numbers under them."""
    from stargan.domains import celeba
    from stargan.inference import Editor

    sys.path.insert(0, str(ROOT / "demo"))
    import app as demo_app

    demo, _ = app
    shipped = demo.models.get(None)
    assert set(shipped.names) <= set(demo_app.ALL_NAMES)
    assert len(demo_app.ALL_NAMES) == len(set(demo_app.ALL_NAMES)) == 48
    for name in shipped.names:
        assert demo.controls[name].row.visible, name
    # a small model with five attributes and a measured realism for three edits: a grade, not a bare success
    realism = {"per_edit": {
        "to_blond": {"title": "blond hair", "name": "Blond_Hair", "gap_closed": 0.8, "success": 0.84},
        "to_male": {"title": "to male", "name": "Male", "gap_closed": 0.3, "success": 0.9},
        "to_female": {"title": "to female", "name": "Male", "gap_closed": -0.6, "success": 0.7}}}
    folder = small_model(tmp_path / "small", {"evaluation": {"per_label": {"Blond_Hair": {"success": 0.84}},
                                                             "realism": realism}})
    small = demo_app.build_demo(Editor(folder, precision="fp32"))
    for name in demo_app.ALL_NAMES:
        assert small.controls[name].row.visible == (name in celeba().names), name
    assert small.controls["Blond_Hair"].label == "Blond_Hair · works well"
    assert "realism +0.80 of the gap, success 84%" in small.controls["Blond_Hair"].info
    assert small.controls["Male"].label == "Male · experimental: often colour patches"  # the worse of two ways
    assert small.controls["Young"].label == "Young" and small.controls["Young"].info is None
    assert not small.accordions["Expression"].visible and small.accordions["Hair"].visible


def test_missing_weights_is_a_clear_error(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "demo"))
    import app as demo_app

    assert demo_app.main(["--weights", str(tmp_path / "nowhere")]) == 2
    assert "failed to load" in capsys.readouterr().err


def test_several_faces_pick_one_or_all(app, client, tmp_path):
    from gradio_client import handle_file

    sys.path.insert(0, str(ROOT / "demo"))
    import app as demo_app

    astronaut = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    two = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    path = tmp_path / "two.png"
    Image.fromarray(two).save(path)
    prepared = client.predict(handle_file(str(path)), api_name="/prepare")
    face_update, status = prepared[0], prepared[4]
    assert "2 faces found" in status
    choices = [c[0] if isinstance(c, (list, tuple)) else c for c in face_update["choices"]]
    assert choices == ["Face 1 (largest)", "Face 2", demo_app.ALL_FACES]
    n = (len(prepared) - 5) // 2
    values = [u["value"] if isinstance(u, dict) else u for u in prepared[5:5 + n]]
    values[demo_app.ALL_NAMES.index("Blond_Hair")] = 1.0

    faces = app[0].models.get(None).prepare(two).faces
    boxes = [tuple(max(0, int(v)) for v in f.face.box) for f in faces]

    def per_face(face_choice: str, settings: list[float]) -> list[float]:
        _, photo = client.predict(face_choice, "delta", DEFAULT_UPSAMPLE, 1.0, True, True, *settings,
                                  api_name="/edit_live")
        photo = _edited(photo)
        diff = np.abs(np.asarray(Image.open(photo).convert("RGB")).astype(int) - two).mean(2)
        return [float(diff[y0:y1, x0:x1].mean()) for x0, y0, x1, y1 in boxes]

    untouched = [u["value"] if isinstance(u, dict) else u for u in prepared[5:5 + n]]
    noise = max(per_face(demo_app.ALL_FACES, untouched))  # JPEG preview noise alone
    both = per_face(demo_app.ALL_FACES, values)
    assert min(both) > noise + 2, (both, noise)
    first, second = per_face("Face 2", values)
    assert first < noise + 0.5 and second > noise + 2, (first, second, noise)  # only the second person


def test_model_box_bad_model_keeps_serving(client, tmp_path):
    """A model that does not load leaves a readable warning, keeps the current model and the app serving."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    for source in (str(tmp_path / "nowhere"), str(broken)):
        out = client.predict(source, None, api_name="/load_model")
        assert out[0] == {"__type__": "update"}  # the model box is left as it was
    photo_path, _ = _edit(client, ASTRONAUT, {"Young": 0.0})
    assert Path(photo_path).is_file()


def _quiet_client(url: str, monkeypatch: pytest.MonkeyPatch):
    """A client of its own (its own session) that sends no telemetry (it would go to HF_ENDPOINT, the test Hub)."""
    from gradio_client import Client

    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    return Client(url, verbose=False, analytics_enabled=False)


def test_local_page_loads_any_folder_or_hub_id(app, hub, tmp_path, monkeypatch):
    """On your own machine the model box takes any weights folder or Hub id, and shows it as typed."""
    from gradio_client import handle_file

    from stargan.weights import push_to_hub

    local = small_model(tmp_path / "local")
    push_to_hub(local, "someone/extra")
    client = _quiet_client(app[1], monkeypatch)
    assert client.predict(str(local), None, api_name="/load_model")[0]["value"] == str(local)
    assert f"Model: `{local}` (32 px" in client.predict(handle_file(str(ASTRONAUT)), api_name="/prepare")[4]
    assert client.predict("someone/extra", None, api_name="/load_model")[0]["value"] == "someone/extra"
    assert any("/someone/extra/" in path for _, path in hub.requests)


def test_public_page_offers_only_the_owners_models(hub, tmp_path, monkeypatch):
    """Served publicly, a visitor can load neither a server folder nor a Hub id the owner did not list (nothing is
    downloaded) and sees no server path; an offered Hub id loads by its name."""
    import urllib.request

    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from stargan.inference import Editor
    from stargan.weights import push_to_hub

    sys.path.insert(0, str(ROOT / "demo"))
    import app as demo_app

    local = small_model(tmp_path / "local")
    for repo in ("someone/extra", "someone/other"):
        push_to_hub(local, repo)
    demo = demo_app.build_demo(Editor(DEFAULT_WEIGHTS), public=True, offered=["someone/extra"])
    demo.queue(default_concurrency_limit=demo_app.CONCURRENCY)
    port = free_port()
    demo.launch(**demo_app.launch_kwargs("127.0.0.1", port, public=True), prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        config = urllib.request.urlopen(url + "config", timeout=30).read().decode()
        assert str(ROOT) not in config and str(tmp_path) not in config
        client = _quiet_client(url, monkeypatch)
        status = client.predict(handle_file(str(ASTRONAUT)), api_name="/prepare")[4]
        assert "Model: `weights/stargan-studio` (" in status and str(ROOT) not in status

        before = len(hub.requests)
        for probe in (str(local), "someone/other", "/etc"):
            with pytest.raises(AppError, match="not in the list of choices"):
                client.predict(probe, None, api_name="/load_model")
        # the page's own check behind Gradio's choice list, for anything that reaches the shared models
        for probe in (str(local), "someone/other"):
            with pytest.raises(demo_app.ModelNotOffered, match="is not offered on this page; choose one of: "
                                                               "weights/stargan-studio, someone/extra"):
                demo.models.get(probe)
        assert hub.requests[before:] == []  # no download started
        assert "Model: `weights/stargan-studio` (" in client.predict(handle_file(str(ASTRONAUT)),
                                                                     api_name="/prepare")[4]

        assert client.predict("someone/extra", None, api_name="/load_model")[0]["value"] == "someone/extra"
        assert "Model: `someone/extra` (32 px" in client.predict(handle_file(str(ASTRONAUT)), api_name="/prepare")[4]
    finally:
        demo.close()


def test_latency_benchmark_speaks_the_pages_protocol(app):
    """benchmarks/demo_latency.py times slider edits through the page's own queue protocol with inputs it builds
    itself; when the page gains an input the benchmark must follow (it once sent two too few and failed)."""
    import importlib.util

    pytest.importorskip("httpx")
    spec = importlib.util.spec_from_file_location("demo_latency", ROOT / "benchmarks" / "demo_latency.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    raw = bench.QueueClient(app[1])
    values = raw.prepare()
    sys.path.insert(0, str(ROOT / "demo"))
    import app as demo_app

    assert len(values) == len(demo_app.ALL_NAMES)
    after, photo = raw.edit(values)
    assert after and photo  # the edited face and the before | after photo came back


def test_latency_benchmark_times_a_g_that_reads_label_differences():
    """The 128 px line's G reads target minus source labels; the benchmark's bare G timing must feed it both (it
    once called G with the target alone and failed before timing a single edit)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_latency", ROOT / "benchmarks" / "demo_latency.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    weights = ROOT / "weights" / "stargan-studio-128"
    assert json.loads((weights / "config.json").read_text())["model"]["g_condition"] == "difference"
    g = bench.g_numbers(str(weights))
    assert g["image_size"] == 128
    assert g["g_folded_gflops"] < g["g_gflops"] and g["g_forward_ms_fp32"] > 0
