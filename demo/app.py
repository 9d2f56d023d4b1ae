"""StarGAN Studio: upload a selfie, move a slider, see G's edit of your own face pasted back into your photo.

    python demo/app.py [--weights FOLDER_OR_HUB_ID] [--port N] [--host H] [--public [--allow-model HUB_ID ...]]

Also the Hugging Face Space's app_file. The page only talks to ``stargan.inference``.

On your own machine the model box takes any weights folder or Hub id. Served publicly (``--public``, or on a
Space, which sets ``$SPACE_ID``) it offers only the model the page started with and the ids its owner lists
(``--allow-model``, ``$STARGAN_ALLOW_MODELS``), and shows no server path: a visitor can neither make the server
download any repo nor probe its file system.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python demo/app.py` and the Space run this file directly
    sys.path.insert(0, str(ROOT))

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from stargan.domains import CELEBA_ATTRIBUTES, HAIR_COLOURS, RAFD_EXPRESSIONS, RELATED_BY_DEFAULT  # noqa: E402
from stargan.face import DEFAULT_UPSAMPLE, UPSAMPLES, FaceError  # noqa: E402
from stargan.inference import (  # noqa: E402
    DEFAULT_WEIGHTS,
    MAX_STRENGTH,
    MODES,
    Editor,
    PreparedPhoto,
    missing_default_weights_message,
)
from stargan.live import FaceTracker  # noqa: E402
from stargan.weights import WeightsError  # noqa: E402

logger = logging.getLogger("stargan.demo")

EXAMPLES = ROOT / "demo" / "examples"
MAX_SIDE = 2048  # photos are downscaled to this for the page (the CLI and library keep full resolution)
MAX_FILE_SIZE = "20mb"
CONCURRENCY = 2  # edits at once: one per CPU core of a small server
QUEUE_SIZE = 128  # a classroom: ~40 people, each with at most one pending edit (latest value wins) and a prepare
STEP = 0.01
# Live mode: the webcam sends a frame every LIVE_EVERY s (the newest waits while one is edited, older ones are
# dropped); a stream ends after LIVE_SECONDS of editing (a public page: LIVE_SECONDS_PUBLIC), LIVE_STREAMS at once.
LIVE_EVERY = 0.05
LIVE_SECONDS = 600
LIVE_SECONDS_PUBLIC = 120
LIVE_STREAMS = 1

HAIR = (*HAIR_COLOURS, "Bald", "Bangs", "Receding_Hairline", "Straight_Hair", "Wavy_Hair", "Sideburns")
ACCESSORIES = ("Eyeglasses", "Wearing_Hat", "Wearing_Earrings", "Wearing_Necklace", "Wearing_Necktie",
               "Wearing_Lipstick", "Heavy_Makeup")
HEADLINE = ("Male", "Young", "Smiling")  # what most people try first: open at the top of the page
FACE = tuple(n for n in CELEBA_ATTRIBUTES if n not in HAIR and n not in ACCESSORIES and n not in HEADLINE)
GROUPS: dict[str, tuple[str, ...]] = {"Gender, age, smile": HEADLINE, "Hair": HAIR, "Face": FACE,
                                      "Accessories": ACCESSORIES, "Expression": RAFD_EXPRESSIONS}
OPEN_GROUPS = ("Gender, age, smile", "Hair", "Expression")
ALL_NAMES: tuple[str, ...] = tuple(n for names in GROUPS.values() for n in names)
EXPRESSIONS = set(RAFD_EXPRESSIONS)
ALL_FACES = "All faces"
SPACE_ENV = "SPACE_ID"  # set by Hugging Face Spaces: a page running there is public
ALLOW_ENV = "STARGAN_ALLOW_MODELS"  # more models a public page offers: Hub ids, comma or space separated


# ----------------------------------------------------------------------------------------------- models
class ModelNotOffered(WeightsError):
    """A public page was asked for a model its owner did not offer."""


def public_name(source: str) -> str:
    """A model as a public page shows it: a folder by its path inside the project (else its name), a Hub id as is;
    never an absolute server path."""
    path = Path(source)
    if path.is_dir():
        path = path.resolve()
        return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    return path.name if path.is_absolute() else source


class Models:
    """Editors by weights source, loaded once and shared by every visitor (a few at most).

    ``offered`` None: any weights folder or Hub id loads (a page on your own machine). A list (a public page):
    only the default model and these sources load, asked for by :func:`public_name` (or source).
    """

    def __init__(self, default: Editor, keep: int = 3, offered: Sequence[str] | None = None) -> None:
        self.default_key = default.source
        self._editors: OrderedDict[str, Editor] = OrderedDict({default.source: default})
        self._keep = keep
        self._lock = threading.Lock()
        self._prepared: OrderedDict[tuple[str, str], PreparedPhoto] = OrderedDict()  # for the /edit API
        self.public = offered is not None
        self.offered = {public_name(s): s for s in (default.source, *(offered or ()))}  # public name -> source

    def name(self, editor: Editor) -> str:
        """What the page shows for a model: its source locally, its public name on a public page."""
        return public_name(editor.source) if self.public else editor.source

    def get(self, key: str | None) -> Editor:
        key = key or self.default_key
        if self.public:
            if key not in self.offered and key not in self.offered.values():
                raise ModelNotOffered(f"{key!r} is not offered on this page; choose one of: {', '.join(self.offered)}")
            key = self.offered.get(key, key)
        with self._lock:
            if key in self._editors:
                self._editors.move_to_end(key)
                return self._editors[key]
        editor = Editor(key)  # WeightsError for anything that does not load: the caller shows it
        with self._lock:
            self._editors[key] = editor
            while len(self._editors) > self._keep:
                oldest = next(k for k in self._editors if k != self.default_key)
                del self._editors[oldest]
        return editor

    def prepared(self, editor: Editor, path: str) -> PreparedPhoto:
        """prepare() once per (model, file content): API callers that send the same photo again reuse it."""
        key = (editor.source, hashlib.sha1(Path(path).read_bytes()).hexdigest())
        with self._lock:
            if key in self._prepared:
                self._prepared.move_to_end(key)
                return self._prepared[key]
        prepared = prepare(editor, path)
        with self._lock:
            self._prepared[key] = prepared
            while len(self._prepared) > 16:
                self._prepared.popitem(last=False)
        return prepared


def prepare(editor: Editor, path: str) -> PreparedPhoto:
    """The photo, downscaled for the page when huge, detected, aligned and read; readable errors."""
    from stargan.face import load_image

    try:
        image = load_image(path, max_pixels=editor.max_pixels)
        h, w = image.shape[:2]
        if max(h, w) > MAX_SIDE:
            import cv2

            scale = MAX_SIDE / max(h, w)
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        return editor.prepare(image)
    except FaceError as e:  # the upload's name, not its server path
        raise gr.Error(str(e).replace(str(path), Path(path).name), title="Cannot use this photo") from e
    except FileNotFoundError as e:
        raise gr.Error("the uploaded file is gone; upload it again", title="Cannot use this photo") from e


def _safe_preprocess(component: gr.Image) -> gr.Image:
    """Gradio opens uploads with Pillow before our code runs; turn its failures into readable messages."""
    original = component.preprocess

    def preprocess(payload):
        try:
            return original(payload)
        except gr.Error:
            raise
        except Exception as e:  # Pillow: not an image, decompression bomb, truncated file ...
            name = type(e).__name__
            if "DecompressionBomb" in name:
                message = ("this image is far too large (its header claims more pixels than any photo has: a "
                           "decompression bomb?); upload a photo under 80 megapixels")
            else:
                message = f"this file is not an image that can be read ({name}): upload a JPEG, PNG, WebP, BMP or TIFF photo"
            raise gr.Error(message, title="Cannot use this file") from e

    component.preprocess = preprocess
    return component


# ------------------------------------------------------------------------------------------------ labels
def control_label(name: str, grades: dict[str, tuple[str, str]]) -> str:
    """A control's name with its plain grade (Editor.grades: realism and success measured on held-out faces);
    an ungraded name stands alone, since a success figure alone reads as 'it works' when it may not."""
    return f"{name} · {grades[name][0]}" if name in grades else name


def control_info(name: str, grades: dict[str, tuple[str, str]]) -> str | None:
    """The numbers behind a control's grade, shown under it."""
    return grades[name][1] if name in grades else None


class Previews:
    """Images for the page as JPEG files (quality 92, no chroma subsampling): encoding a 512 px photo takes ~1 ms,
    PNG ~150 ms, which would dominate a live slider edit. The PNG comes from the "Save as PNG" button. Only the
    most recent files are kept (Gradio copies each into its own cache when it sends it)."""

    def __init__(self, keep: int = 512) -> None:
        import tempfile

        self.folder = Path(tempfile.mkdtemp(prefix="stargan-demo-"))
        self._recent: deque[Path] = deque()
        self._keep = keep
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray | None, lossless: bool = False, prefix: str = "") -> str | None:
        if image is None:
            return None
        from PIL import Image

        path = self.folder / f"{prefix}{uuid.uuid4().hex}.{'png' if lossless else 'jpg'}"
        if lossless:
            Image.fromarray(image).save(path, format="PNG")
        else:
            Image.fromarray(image).save(path, format="JPEG", quality=92, subsampling=0)
        with self._lock:
            self._recent.append(path)
            while len(self._recent) > self._keep:
                self._recent.popleft().unlink(missing_ok=True)
        return str(path)


def _face_choices(prepared: PreparedPhoto | None) -> list[str]:
    if prepared is None:
        return ["Face 1"]
    n = len(prepared.faces)
    return [f"Face {i + 1}" + (" (largest)" if i == 0 and n > 1 else "") for i in range(n)] + (
        [ALL_FACES] if n > 1 else [])


def _face_arg(choice: str | None) -> int | str:
    if not choice or not choice.startswith("Face "):
        return "all" if choice == ALL_FACES else 0
    return int(choice.split()[1]) - 1


def _settings(state: dict, values: tuple[float, ...], names: tuple[str, ...]) -> dict[str, float]:
    """The controls the user moved away from what the face shows now: untouched ones change nothing."""
    initial = state.get("initial", {})
    return {n: float(v) for n, v in zip(names, values, strict=True)
            if n in initial and v is not None and abs(float(v) - initial[n]) > 1e-6}


# ------------------------------------------------------------------------------------------------- page
def build_demo(default: Editor, public: bool = False, offered: Sequence[str] = ()) -> gr.Blocks:
    """The page. ``public``: visitors choose only among ``default`` and ``offered`` and see no server path."""
    models = Models(default, offered=list(offered) if public else None)
    names = ALL_NAMES

    def visible_names(editor: Editor) -> set[str]:
        return set(editor.names)

    preview = Previews()

    with gr.Blocks(title="StarGAN Studio", delete_cache=(1800, 3600)) as demo:
        state = gr.State({})
        gr.Markdown("# StarGAN Studio\nUpload a photo (or use the webcam, or paste one), then move the sliders: "
                    "one network (StarGAN, Choi et al. 2018) edits the face and the change is pasted back into "
                    "your photo. Sliders start at what the model reads from the face.")
        with gr.Row():
            with gr.Column(scale=3):
                image = _safe_preprocess(gr.Image(type="filepath", sources=["upload", "webcam", "clipboard"],
                                                  label="Your photo", elem_id="input-photo", height=320))
                with gr.Row():
                    face = gr.Dropdown(["Face 1"], value="Face 1", label="Face", interactive=True, scale=2)
                    mode = gr.Radio(list(MODES), value="delta", label="Paste", scale=2,
                                    info="delta: paste G's change (keeps your photo's detail); direct: G's picture")
                    upsample = gr.Radio(list(UPSAMPLES), value=DEFAULT_UPSAMPLE, label="Upsampling", scale=2,
                                        info="guided: the change follows your photo's edges; bilinear: smooth")
                strength = gr.Slider(0, MAX_STRENGTH, value=1, step=0.1, label="Edit strength", elem_id="strength",
                                     info="multiplies the change the model makes: above 1 exaggerates a subtle edit")
                related = gr.Checkbox(RELATED_BY_DEFAULT, label="Related attributes follow", elem_id="related",
                                      info="gender also takes off make-up (to male) or facial hair (to female); a "
                                           "smile lifts the cheeks and opens the mouth. Stronger, but with more "
                                           "colour patches. Sliders you moved stay as set")
                regions = gr.Checkbox(True, label="Keep each edit in its place", elem_id="regions",
                                      info="a hair colour changes the hair, not the skin; no edit tints the background")
                status = gr.Markdown("", elem_id="status")
                reset = gr.Button("Reset", variant="secondary")
                if EXAMPLES.is_dir():
                    gr.Examples([[str(p)] for p in sorted(EXAMPLES.glob("*.png"))], inputs=image,
                                label="Examples (public domain)")
            with gr.Column(scale=4):
                with gr.Row():
                    before_img = gr.Image(label="Aligned face (before)", interactive=False, height=200,
                                          elem_id="before")
                    after_img = gr.Image(label="Aligned face (after)", interactive=False, height=200,
                                         elem_id="after")
                # before | after at the photo's full resolution; scroll to zoom, drag to pan
                photo_out = gr.ImageSlider(label="Your photo: before | edited (scroll to zoom)", interactive=False,
                                           elem_id="output-photo", max_height=560, buttons=["fullscreen"])
                with gr.Row():
                    save_png = gr.Button("Save as PNG", size="sm", elem_id="save-png")
                    png_file = gr.File(label="PNG", elem_id="png-file", visible=False)
                with gr.Accordion("Live mode: your webcam, edited as you move", elem_id="live"):
                    # each frame is edited with the same controls as the photo; nothing of the stream is kept
                    live_out = gr.Image(label="Live: edited (the sliders you move apply at once)", interactive=False,
                                        format="jpeg", elem_id="live-output", height=420, buttons=["fullscreen"])
                    with gr.Row():
                        camera = gr.Image(sources="webcam", streaming=True, type="numpy", label="Camera",
                                          elem_id="live-camera", height=180, scale=1)
                        live_note = gr.Markdown("Start the camera (Record): one face, the largest, is edited as it "
                                                "moves.", elem_id="live-note")
                live_state = gr.State(None)  # this visitor's FaceTracker and the last picture sent
            with gr.Column(scale=4):
                if models.public:  # only the owner's list, by public names; hidden when there is no choice
                    model_box = gr.Dropdown(list(models.offered), value=models.name(default), label="Model",
                                            elem_id="model-box", visible=len(models.offered) > 1)
                else:
                    model_box = gr.Textbox(default.source, label="Model (weights folder or Hub id owner/name)",
                                           elem_id="model-box")
                load_model = gr.Button("Load model", size="sm", visible=not models.public or len(models.offered) > 1)
                sliders: dict[str, gr.Slider] = {}
                checks: dict[str, gr.Checkbox] = {}
                accordions: dict[str, gr.Accordion] = {}
                grades = default.grades()
                shown = visible_names(default)
                for group, group_names in GROUPS.items():
                    with gr.Accordion(group, open=group in OPEN_GROUPS,
                                      visible=any(n in shown for n in group_names)) as acc:
                        accordions[group] = acc
                        for n in group_names:
                            with gr.Row(visible=n in shown, equal_height=True) as row:
                                sliders[n] = gr.Slider(0, 1, value=0, step=STEP, label=control_label(n, grades),
                                                       info=control_info(n, grades),
                                                       elem_id=f"slider-{n}", scale=5, min_width=160)
                                checks[n] = gr.Checkbox(False, label="on", elem_id=f"check-{n}", scale=1,
                                                        min_width=60)
                            sliders[n].row = row  # type: ignore[attr-defined]
        slider_list = [sliders[n] for n in names]
        check_list = [checks[n] for n in names]
        outputs_edit = [after_img, photo_out]

        # ---- handlers ------------------------------------------------------------------------------------
        def editor_of(st: dict) -> Editor:
            return models.get(st.get("model"))

        def edit(st: dict, face_choice: str, mode_value: str, upsample_value: str, strength_value: float,
                 related_value: bool, regions_value: bool, values: tuple[float, ...]):
            return editor_of(st).edit(st["prepared"], _settings(st, values, names), face=_face_arg(face_choice),
                                      mode=mode_value if mode_value in MODES else "delta", strength=strength_value,
                                      related=bool(related_value), regions=bool(regions_value),
                                      upsample=upsample_value if upsample_value in UPSAMPLES else DEFAULT_UPSAMPLE)

        def original(st: dict) -> str | None:
            """The uploaded photo's preview file, written once per photo (rewritten if rotated away)."""
            path = st.get("original")
            if path is None or not Path(path).is_file():
                path = st["original"] = preview(st["prepared"].photo)
            return path

        def run_edit(st: dict, face_choice: str, mode_value: str, upsample_value: str, strength_value: float,
                     related_value: bool, regions_value: bool, values: tuple[float, ...]):
            if st.get("prepared") is None:
                return None, None
            try:
                result = edit(st, face_choice, mode_value, upsample_value, strength_value, related_value,
                              regions_value, values)
            except (KeyError, ValueError) as e:
                raise gr.Error(str(e.args[0] if e.args else e), title="Cannot make this edit") from e
            return preview(result.after[0]), (original(st), preview(result.photo))

        def reading(st: dict, face_choice: str) -> dict[str, float]:
            prepared: PreparedPhoto = st["prepared"]
            index = _face_arg(face_choice)
            return prepared.faces[0 if index == "all" else index].labels

        def controls_for(st: dict, face_choice: str) -> list:
            labels = reading(st, face_choice)
            st["initial"] = {n: round(round(v / STEP) * STEP, 2) for n, v in labels.items()}
            return ([gr.update(value=st["initial"].get(n, 0.0)) for n in names]
                    + [gr.update(value=(n not in EXPRESSIONS and labels.get(n, 0.0) >= 0.5)) for n in names])

        def on_photo(path: str | None, st: dict):
            st = dict(st or {})
            if path is None:
                st.pop("prepared", None)
                return [st, gr.update(choices=["Face 1"], value="Face 1"), None, None, None, ""] + \
                    [gr.update() for _ in names] * 2
            editor = editor_of(st)
            prepared = models.prepared(editor, path)
            st["prepared"] = prepared
            choices = _face_choices(prepared)
            n = len(prepared.faces)
            message = (f"{n} faces found: pick one, or all." if n > 1 else "1 face found.") + \
                f" Model: `{models.name(editor)}` ({editor.image_size} px, {editor.precision})."
            controls = controls_for(st, choices[0])
            st.pop("original", None)
            crop = preview(prepared.faces[0].view)
            return [st, gr.update(choices=choices, value=choices[0]), crop, crop, (original(st), original(st)),
                    message] + controls

        photo_outputs = [state, face, before_img, after_img, photo_out, status] + slider_list + check_list
        image.change(on_photo, [image, state], photo_outputs, trigger_mode="always_last", concurrency_id="prepare",
                     concurrency_limit=1, api_name="prepare", show_progress_on=[photo_out])

        def on_face(face_choice: str, mode_value: str, st: dict):
            if not st or st.get("prepared") is None:
                return [st, None, None, None] + [gr.update() for _ in names] * 2
            controls = controls_for(st, face_choice)
            prepared: PreparedPhoto = st["prepared"]
            index = _face_arg(face_choice)
            crop = preview(prepared.faces[0 if index == "all" else index].view)
            return [st, crop, crop, (original(st), original(st))] + controls

        face.input(on_face, [face, mode, state], [state, before_img, after_img, photo_out] + slider_list + check_list,
                   api_name="select_face", show_progress_on=[photo_out])

        def on_slider(st: dict, face_choice: str, mode_value: str, upsample_value: str, strength_value: float,
                      related_value: bool, regions_value: bool, *values: float):
            return run_edit(st or {}, face_choice, mode_value, upsample_value, strength_value, related_value,
                            regions_value, values)

        gr.on([s.input for s in slider_list] + [mode.input, upsample.input, strength.input, related.input,
                                                regions.input], on_slider,
              [state, face, mode, upsample, strength, related, regions] + slider_list,
              outputs_edit, trigger_mode="always_last", concurrency_id="edit", concurrency_limit=CONCURRENCY,
              show_progress="hidden", api_name="edit_live")

        def make_toggle(name: str) -> Callable:
            def toggle(checked: bool, st: dict, face_choice: str, mode_value: str, upsample_value: str,
                       strength_value: float, related_value: bool, regions_value: bool, *values: float):
                st = st or {}
                current = dict(zip(names, values, strict=True))
                check_updates = [gr.update() for _ in names]
                if name in EXPRESSIONS:
                    for i, n in enumerate(names):
                        if n in EXPRESSIONS:
                            if checked:
                                current[n] = 1.0 if n == name else 0.0
                                check_updates[i] = gr.update(value=n == name)
                            else:  # unticked: back to the face's own expression
                                current[n] = st.get("initial", {}).get(n, current[n])
                else:
                    current[name] = 1.0 if checked else 0.0
                new_values = tuple(current[n] for n in names)
                after, photo = run_edit(st, face_choice, mode_value, upsample_value, strength_value, related_value,
                                        regions_value, new_values)
                return [gr.update(value=v) for v in new_values] + check_updates + [after, photo]

            return toggle

        for n in names:
            checks[n].input(make_toggle(n), [checks[n], state, face, mode, upsample, strength, related, regions]
                            + slider_list,
                            slider_list + check_list + outputs_edit, trigger_mode="always_last",
                            concurrency_id="edit", concurrency_limit=CONCURRENCY, show_progress="hidden",
                            api_visibility="undocumented")

        def on_save(st: dict, face_choice: str, mode_value: str, upsample_value: str, strength_value: float,
                    related_value: bool, regions_value: bool, *values: float):
            if (st or {}).get("prepared") is None:
                raise gr.Error("upload a photo first", title="Nothing to save")
            result = edit(st, face_choice, mode_value, upsample_value, strength_value, related_value, regions_value,
                          values)
            return gr.update(value=preview(result.photo, lossless=True, prefix="stargan-edit-"), visible=True)

        save_png.click(on_save, [state, face, mode, upsample, strength, related, regions] + slider_list, png_file,
                       concurrency_id="edit",
                       concurrency_limit=CONCURRENCY, api_name="save_png")

        def on_reset(st: dict, face_choice: str):
            if not st or st.get("prepared") is None:
                return [gr.update() for _ in names] * 2 + [None, None]
            controls = controls_for(st, face_choice)
            prepared: PreparedPhoto = st["prepared"]
            index = _face_arg(face_choice)
            return controls + [preview(prepared.faces[0 if index == "all" else index].view),
                               (original(st), original(st))]

        reset.click(on_reset, [state, face], slider_list + check_list + outputs_edit, api_name="reset",
                    show_progress="hidden")

        # ---- live mode: the webcam streamed to the server, each frame edited with the same controls ----------
        # The controls reach the stream through a server-side copy made when one changes: sent with every frame,
        # their ~50 values cost the browser ~100 ms a frame (benchmarks/RESULTS.md, "Live mode").
        controls = [mode, upsample, strength, related, regions] + slider_list
        live_controls = gr.State(None)
        defaults = tuple(c.value for c in controls)  # until a control changes
        gr.on([c.change for c in controls], lambda *v: v, controls, live_controls, trigger_mode="always_last",
              concurrency_limit=None, show_progress="hidden", api_visibility="undocumented")

        def on_frame(frame: np.ndarray | None, live: dict | None, st: dict, current: tuple | None):
            if frame is None:
                return None, "", live
            mode_value, upsample_value, strength_value, related_value, regions_value, *values = current or defaults
            editor = editor_of(st or {})
            if live is None or live["tracker"].editor is not editor:
                live = {"tracker": FaceTracker(editor), "sent": None}
            # as for a photo, the sliders moved away from where they stand: the photo's reading, or 0 without one
            initial = (st or {}).get("initial") or {n: 0.0 for n in names}
            try:
                shown = live["tracker"].edit(
                    frame, _settings({"initial": initial}, values, names),
                    mode=mode_value if mode_value in MODES else "delta", strength=strength_value,
                    upsample=upsample_value if upsample_value in UPSAMPLES else DEFAULT_UPSAMPLE,
                    related=bool(related_value), regions=bool(regions_value))
            except (KeyError, ValueError) as e:
                raise gr.Error(str(e.args[0] if e.args else e), title="Cannot make this edit") from e
            # Gradio names a picture's file by its content and rewrites it in place: the same picture sent again
            # would be rewritten while the browser may still be reading it (a still camera, no slider moved)
            same = live["sent"] is not None and np.array_equal(live["sent"], shown.image)
            live["sent"] = shown.image
            return gr.update() if same else shown.image, shown.note, live

        camera.stream(on_frame, [camera, live_state, state, live_controls], [live_out, live_note, live_state],
                      stream_every=LIVE_EVERY, time_limit=LIVE_SECONDS_PUBLIC if models.public else LIVE_SECONDS,
                      concurrency_id="live", concurrency_limit=LIVE_STREAMS, show_progress="hidden",
                      api_visibility="undocumented")

        def on_load_model(key: str, st: dict, path: str | None):
            st = dict(st or {})
            key = (key or "").strip() or models.default_key
            try:
                editor = models.get(key)
            except WeightsError as e:
                logger.warning("model %r failed to load: %s", key, e)
                detail = e if not models.public or isinstance(e, ModelNotOffered) else "(details in the server log)"
                gr.Warning(f"Model failed to load, keeping the current one. {detail}", title="Model failed to load")
                return [st, gr.update()] + [gr.update() for _ in names] + [gr.update() for _ in GROUPS] + \
                    [gr.update() for _ in names] + [gr.update() for _ in photo_outputs[1:]]
            st["model"] = editor.source
            st.pop("prepared", None)
            shown_now = visible_names(editor)
            grades_now = editor.grades()
            rows = [gr.update(visible=n in shown_now) for n in names]
            accs = [gr.update(visible=any(n in shown_now for n in g)) for g in GROUPS.values()]
            labels = [gr.update(label=control_label(n, grades_now), info=control_info(n, grades_now)) for n in names]
            rest = [gr.update() for _ in photo_outputs[1:]]
            if path:
                photo_part = on_photo(path, st)
                st, rest = photo_part[0], photo_part[1:]
            gr.Info(f"Loaded {models.name(editor)}: {len(editor.names)} labels, {editor.image_size} px.")
            return [st, gr.update(value=models.name(editor))] + rows + accs + labels + rest

        load_model.click(on_load_model, [model_box, state, image],
                         [state, model_box] + [sliders[n].row for n in names] + list(accordions.values())
                         + slider_list + photo_outputs[1:], api_name="load_model")

        # ---- a stateless endpoint for programs: photo + settings in, edited photo (PNG) out ------------------
        with gr.Row(visible=False):
            api_image = _safe_preprocess(gr.Image(type="filepath", label="photo"))
            api_settings = gr.Textbox(label="settings (JSON object {name: intensity in [0, 1]})")
            api_face = gr.Textbox("0", label="face (number from 0, largest first, or 'all')")
            api_mode = gr.Textbox("delta", label="mode (delta or direct)")
            api_photo = gr.Image(format="png", label="edited photo")
            api_after = gr.Image(format="png", label="edited aligned face")
            api_button = gr.Button("edit")

        def api_edit(path: str | None, settings_text: str, face_text: str, mode_text: str):
            if path is None:
                raise gr.Error("no photo given", title="Cannot use this photo")
            try:
                settings = json.loads(settings_text or "{}")
                if not isinstance(settings, dict):
                    raise ValueError("settings must be a JSON object such as {\"Blond_Hair\": 1}")
                face_arg: int | str = "all" if (face_text or "0").strip() == "all" else int(face_text or 0)
                editor = models.get(None)
                prepared = models.prepared(editor, path)
                result = editor.edit(prepared, settings, face=face_arg, mode=(mode_text or "delta").strip())
            except (KeyError, ValueError) as e:
                raise gr.Error(str(e.args[0] if e.args else e), title="Cannot make this edit") from e
            # Files, not arrays: Gradio writes an array to a path named by its content, non-atomically, so two
            # users making the same edit at once could download a half-written file; a file is copied atomically.
            return preview(result.photo, lossless=True), preview(result.after[0], lossless=True)

        api_button.click(api_edit, [api_image, api_settings, api_face, api_mode], [api_photo, api_after],
                         api_name="edit", concurrency_id="edit", concurrency_limit=CONCURRENCY)
    demo.models = models  # type: ignore[attr-defined]  (tests reach the shared editor through it)
    demo.controls = sliders  # type: ignore[attr-defined]
    demo.accordions = accordions  # type: ignore[attr-defined]
    return demo


def create(weights: str | Path = DEFAULT_WEIGHTS, public: bool = False, offered: Sequence[str] = ()) -> gr.Blocks:
    """The queued page for ``weights`` (see :func:`build_demo`); raises WeightsError when the model does not load."""
    editor = Editor(weights)
    warm = EXAMPLES / "astronaut.png"
    if warm.is_file():  # builds the face detector and runs each network once, so the first visitor waits less
        try:
            editor.edit(editor.prepare(warm), {editor.names[0]: 1.0})
        except FaceError:
            logger.warning("warm-up on %s found no face", warm)
    demo = build_demo(editor, public, offered)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def launch_kwargs(host: str | None, port: int | None, public: bool = False) -> dict[str, Any]:
    # Publicly, only our own readable gr.Error messages reach visitors, not unexpected exceptions' texts.
    return {"server_name": host, "server_port": port, "max_file_size": MAX_FILE_SIZE, "show_error": not public}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="StarGAN Studio demo")
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="weights folder or Hub id owner/name[@rev]")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--host", default=None, help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--public", action="store_true",
                        help=f"serve to the public: visitors may only choose among --weights and --allow-model, and "
                             f"see no server path (on by itself on a Hugging Face Space, which sets ${SPACE_ENV})")
    parser.add_argument("--allow-model", action="append", default=[], metavar="HUB_ID",
                        help=f"a public page also offers this model (Hub id owner/name[@revision]); repeat for "
                             f"several. ${ALLOW_ENV} adds more (comma-separated; set it as a Space variable)")
    args = parser.parse_args(argv)
    public = args.public or bool(os.environ.get(SPACE_ENV))
    offered = [*args.allow_model, *re.split(r"[,\s]+", os.environ.get(ALLOW_ENV, "").strip())]
    offered = list(dict.fromkeys(o for o in offered if o))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if Path(args.weights) == DEFAULT_WEIGHTS and not DEFAULT_WEIGHTS.is_dir():
        print(f"error: {missing_default_weights_message()}", file=sys.stderr)
        return 2
    try:
        demo = create(args.weights, public, offered)
    except WeightsError as e:
        print(f"error: the model failed to load: {e}", file=sys.stderr)
        return 2
    if public:
        logger.info("public page: models offered: %s", ", ".join(demo.models.offered))  # type: ignore[attr-defined]
    demo.launch(**launch_kwargs(args.host, args.port, public))
    return 0


if __name__ == "__main__":
    sys.exit(main())
