"""Inference: load a model once, read a face's labels, translate, and edit whole photos.

    from stargan.inference import Editor
    editor = Editor()                                  # weights/stargan-studio, or Editor("owner/name")
    prepared = editor.prepare("photo.jpg")             # detect + align + read labels, once per photo
    result = editor.edit(prepared, {"Blond_Hair": 1, "happy": 1})
    result.photo                                       # (H, W, 3) uint8, the edit pasted back

Edits that span datasets run as chained passes of G with the right mask vector: attributes (binary blocks)
first, then the expression (categorical blocks). An expression target is a probability vector.

Paste-back: by default the *change* G makes is pasted, not G's picture: ``delta = G(x, c_target) -
G(x, c_source)`` at model resolution, where ``c_source`` is what D_cls reads from the face, so controls left
alone change nothing; the delta is upsampled and added to the full-resolution photo (``face.paste_delta``), so
what the edit does not touch keeps the photo's own detail. ``mode="direct"`` pastes G's output instead.
Expression passes apply only the luminance of their change (the same value added to R, G and B): the
expression data is mostly grayscale, and this keeps the photo's colour (its YCbCr chroma is unchanged).
Each pass's change is kept to its region (``stargan.regions``, on by default in ``edit``): a hair colour
changes the hair, not the skin; no edit tints the background.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch

from .colour import luminance
from .device import native_bf16
from .domains import BINARY, CATEGORICAL, RELATED_BY_DEFAULT, DatasetLabels, LabelSpace
from .face import (
    CELEBA_HQ_128_TEMPLATE,
    DEFAULT_MAX_PIXELS,
    DEFAULT_UPSAMPLE,
    Face,
    FaceDetector,
    FaceError,
    Upsample,
    align,
    face_view,
    load_image,
    paste_back,
    paste_delta,
)
from .regions import face_regions, keep_in_region
from .weights import LoadedModel, WeightsError, load_weights

logger = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "stargan-studio"
MODES = ("delta", "direct")
MAX_STRENGTH = 3.0  # beyond this G's change is mostly its artefacts, magnified
Mode = Literal["delta", "direct"]
# bf16 is used only when it is faster and G's output stays this close to fp32's (images in [-1, 1]):
BF16_MAX_ABS = 0.08  # ~10/255 at the worst pixel
BF16_MEAN_ABS = 0.01  # ~1.3/255 on average
# paste-back blend: the mask falls from 1 to 0 over this fraction of the crop at each edge. G also changes the
# background around the head a little; 0.25 hides the crop's outline where face.py's 0.12 leaves a faint box.
PASTE_FEATHER = 0.25


def missing_default_weights_message(path: Path = DEFAULT_WEIGHTS) -> str:
    return (f"the default model {path} is missing. Get it with `git lfs pull` / a fresh clone of the project, "
            "train one (`python train.py --help`; the weights folder is written to <run_dir>/export, copy it to "
            f"{path}), or pass another weights folder or Hugging Face Hub id with --weights")


# ------------------------------------------------------------------------------------------------ results
@dataclass
class PreparedFace:
    """One detected face, aligned to the model's template, with the labels D_cls reads from it."""

    index: int
    face: Face
    crop: np.ndarray  # (S, S, 3) uint8, the aligned face as the model sees it
    view: np.ndarray  # the same framing at the photo's own resolution (face.face_view), for display
    matrix: np.ndarray  # (2, 3) photo -> crop
    tensor: torch.Tensor  # (3, S, S) float32 in [-1, 1]
    source: torch.Tensor  # (d_dim,) probabilities in D_cls layout
    labels: dict[str, float]  # the same, by name
    _regions: torch.Tensor | None = field(default=None, repr=False)  # Editor.regions_for, made at the first edit
    _cache: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # G(x, c_source) per dataset


@dataclass
class PreparedPhoto:
    """A photo after detection, alignment and label reading: made once per upload, reused by every edit."""

    photo: np.ndarray  # (H, W, 3) uint8 RGB
    faces: list[PreparedFace]

    @property
    def size(self) -> tuple[int, int]:
        return self.photo.shape[1], self.photo.shape[0]


@dataclass
class EditResult:
    photo: np.ndarray  # the whole photo with the edit pasted back, (H, W, 3) uint8
    before: list[np.ndarray]  # aligned faces from the photo, at its resolution (face.face_view), uint8
    after: list[np.ndarray]  # the same views of the edited photo
    face_indices: list[int]
    mode: str
    seconds: float = 0.0


# ------------------------------------------------------------------------------------------- helpers
def to_tensor(images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 (S, S, 3) or (B, S, S, 3) -> float32 (B, 3, S, S) in [-1, 1]."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float (B, 3, S, S) in [-1, 1] -> uint8 (B, S, S, 3)."""
    out = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()


def within_gamut(step: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """A grey change (equal on R, G, B) limited per pixel so that ``image + step`` clips no channel: a clipped
    channel would lose the pixel's colour, so the change stops where the pixel's brightest (or darkest) channel
    reaches the end of the range. Images in [-1, 1]."""
    hi = 1.0 - image.amax(1, keepdim=True)
    lo = -1.0 - image.amin(1, keepdim=True)
    return torch.minimum(torch.maximum(step, lo), hi)


def mean_chroma(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean colourfulness of an RGB uint8 image: sqrt(Cb'^2 + Cr'^2) with Cb, Cr centred on 128 (YCbCr),
    averaged over ``mask`` (bool (H, W)) or the whole image."""
    ycrcb = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_RGB2YCrCb).astype(np.float64)
    chroma = np.hypot(ycrcb[..., 1] - 128.0, ycrcb[..., 2] - 128.0)
    return float(chroma[mask].mean() if mask is not None else chroma.mean())


class LabelFoldedGenerator(torch.nn.Module):
    """G with its first convolution split by linearity, for inference: the same function, fewer FLOPs.

    G's first layer convolves ``cat[x, c]`` where the label channels are ``c`` repeated over the image:
    ``conv(cat[x, c]) = conv(x, W_x) + conv(1, sum_k c_k W_k)``: the image part has 3 input channels instead of
    3 + len(c), and the label part is one single-channel convolution of a map of ones (zero padding makes it
    vary only near the border). At 64 px with 50 labels this removes ~40% of G's FLOPs. Outputs match G's to
    float rounding (tests/test_inference.py checks it)."""

    def __init__(self, generator: torch.nn.Module) -> None:
        super().__init__()
        if not isinstance(getattr(generator, "main", None), torch.nn.Sequential):
            raise ValueError("G is not a stargan.models.Generator (no `main` layer sequence)")
        first = generator.main[0]
        if not (isinstance(first, torch.nn.Conv2d) and first.bias is None and first.stride == (1, 1)
                and first.in_channels == 3 + generator.c_dim and first.groups == 1):
            raise ValueError("G's first layer is not the expected label-concatenating convolution")
        self.c_dim = generator.c_dim
        self.label_input = generator.label_input
        self.first = first
        self.rest = generator.main[1:]
        self.finish = generator.finish

    def forward(self, x: torch.Tensor, c: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        c = self.label_input(c, source)
        w = self.first.weight
        pad = self.first.padding
        b, _, h, wd = x.shape
        image_part = torch.nn.functional.conv2d(x, w[:, :3], None, 1, pad)
        kernels = torch.einsum("bk,okij->boij", c.to(w.dtype), w[:, 3:])  # (B, O, kh, kw)
        label_part = torch.nn.functional.conv2d(x.new_ones(1, 1, h, wd), kernels.reshape(-1, 1, *w.shape[2:]),
                                                None, 1, pad).view(b, -1, h, wd)
        return self.finish(x, self.rest(image_part + label_part))


def _dataset_order(space: LabelSpace) -> list[DatasetLabels]:
    """Attributes first, then expressions, each group in label-space order."""
    return [d for d in space.datasets if d.kind == BINARY] + [d for d in space.datasets if d.kind == CATEGORICAL]


# --------------------------------------------------------------------------------------------- the editor
class Editor:
    """A StarGAN model loaded once, with its face pipeline: prepare photos, translate faces, edit photos."""

    def __init__(self, weights: str | Path | LoadedModel = DEFAULT_WEIGHTS, device: str = "cpu",
                 precision: Literal["auto", "fp32", "bf16"] = "auto", detector: FaceDetector | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS, max_faces: int = 8, fold_labels: bool = True,
                 feather: float = PASTE_FEATHER) -> None:
        if isinstance(weights, LoadedModel):
            self.model = weights
        else:
            if Path(weights) == DEFAULT_WEIGHTS and not DEFAULT_WEIGHTS.is_dir():
                raise WeightsError(missing_default_weights_message())
            self.model = load_weights(weights, device=device)
        self.device = torch.device(device)
        self.source = str(weights) if isinstance(weights, (str, Path)) else str(self.model.path)
        self.config = self.model.config
        self.space: LabelSpace = self.config.label_space
        self.image_size = self.config.image_size
        if self.model.template is None:
            logger.warning("%s has no alignment template in config.json; using the CelebA-HQ template",
                           self.model.path)
        self.template = np.asarray(self.model.template or CELEBA_HQ_128_TEMPLATE, dtype=np.float64)
        if self.model.discriminator is None:
            logger.warning("%s has no discriminator: a face's labels cannot be read; edits start from neutral "
                           "labels (attributes 0, expressions uniform)", self.model.path)
        self.generator: torch.nn.Module = self.model.generator
        if fold_labels:
            try:
                self.generator = LabelFoldedGenerator(self.model.generator)
            except ValueError as e:
                logger.info("not folding G's label channels: %s", e)
        self.feather = feather
        self.max_pixels = max_pixels
        self.max_faces = max_faces
        self._detector = detector
        self.precision, self.precision_report = self._choose_precision(precision)
        logger.info("editor: %s on %s, %s (%s)", self.source, self.device, self.precision, self.precision_report)

    # ---- model facts -----------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return self.space.all_names

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector(device=str(self.device))
        return self._detector

    def grades(self) -> dict[str, tuple[str, str]]:
        """A plain grade per label name from the model card's realism measurement (stargan.realism.grade), with
        the numbers behind it: {name: (grade, "to male: realism +0.35 of the gap, success 86%; ...")}. A name
        edited both ways (Male: to male and to female) takes the worse of its grades. Names not measured are
        absent: the page shows them without a grade rather than with a number that does not mean 'it works'."""
        from .realism import GRADES, grade

        per_edit = (((self.model.provenance.get("evaluation") or {}).get("realism") or {}).get("per_edit") or {})
        out: dict[str, tuple[str, str]] = {}
        for r in per_edit.values():
            if not isinstance(r, Mapping) or r.get("name") not in self.names:
                continue
            g = grade(float(r["gap_closed"]), float(r["success"]))
            text = f"{r['title']}: realism {r['gap_closed']:+.2f} of the gap, success {100 * r['success']:.0f}%"
            if r["name"] in out:
                worse = max(out[r["name"]][0], g, key=GRADES.index)
                out[r["name"]] = (worse, f"{out[r['name']][1]}; {text}")
            else:
                out[r["name"]] = (g, text)
        return out

    # ---- precision ---------------------------------------------------------------------------------------
    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _choose_precision(self, precision: str) -> tuple[str, str]:
        if precision == "fp32":
            return "fp32", "requested"
        if precision not in ("auto", "bf16"):
            raise ValueError(f"precision {precision!r}: use 'auto', 'fp32' or 'bf16'")
        if self.device.type == "cpu" and precision == "auto" and not native_bf16(self.device):
            return "fp32", "this CPU has no native bf16 (AVX512-BF16/AMX)"
        if precision == "bf16":
            return "bf16", "requested"
        # measure: bf16 must be faster and stay within tolerance of fp32 on a face-like input
        s = self.image_size
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
        x = torch.stack([torch.cos(3 * xx) * 0.6, torch.sin(2 * yy) * 0.5, (xx * yy) * 0.8])[None].to(self.device)
        c = self.space.g_label(torch.full((1, len(self.space.datasets[0])), 0.5), self.space.datasets[0].name)
        c = c.to(self.device)
        times: dict[str, float] = {}
        outs: dict[str, torch.Tensor] = {}
        G = self.generator
        with torch.inference_mode():
            for name in ("fp32", "bf16", "fp32", "bf16"):  # interleaved: fair to both under load
                ctx = torch.autocast(self.device.type, dtype=torch.bfloat16) if name == "bf16" else nullcontext()
                with ctx:
                    G(x, c, source=c)
                    t0 = time.perf_counter()
                    for _ in range(3):
                        y = G(x, c, source=c)
                    dt = (time.perf_counter() - t0) / 3
                times[name] = min(times.get(name, float("inf")), dt)
                outs[name] = y.float()
        diff = (outs["fp32"] - outs["bf16"]).abs()
        report = (f"G fp32 {times['fp32'] * 1e3:.1f} ms, bf16 {times['bf16'] * 1e3:.1f} ms; "
                  f"bf16 vs fp32 max |diff| {diff.max():.4f}, mean {diff.mean():.4f} (tolerance {BF16_MAX_ABS}, "
                  f"{BF16_MEAN_ABS})")
        ok = diff.max() <= BF16_MAX_ABS and diff.mean() <= BF16_MEAN_ABS and times["bf16"] < 0.9 * times["fp32"]
        return ("bf16" if ok else "fp32"), report

    # ---- reading labels ------------------------------------------------------------------------------------
    def read_labels(self, faces: torch.Tensor) -> torch.Tensor:
        """D_cls's reading of aligned faces (B, 3, S, S) in [-1, 1]: (B, d_dim) in D_cls layout, sigmoid for
        binary attributes, softmax within each expression block."""
        faces = faces.to(self.device)
        out = torch.zeros(faces.shape[0], self.space.d_dim)
        D = self.model.discriminator
        if D is None:
            for d in self.space.datasets:
                if d.kind == CATEGORICAL:
                    out[:, self.space.block(d.name)] = 1.0 / len(d)
            return out
        with torch.inference_mode(), self._autocast():
            logits = D(faces)[1].float().cpu()
        for d in self.space.datasets:
            sl = self.space.block(d.name)
            out[:, sl] = torch.sigmoid(logits[:, sl]) if d.kind == BINARY else torch.softmax(logits[:, sl], dim=1)
        return out

    def labels_by_name(self, values: torch.Tensor) -> dict[str, float]:
        values = torch.as_tensor(values).reshape(-1)
        return {name: float(values[i]) for i, name in enumerate(self.names)}

    # ---- preparing photos ------------------------------------------------------------------------------------
    def prepare(self, photo: str | Path | bytes | np.ndarray | Any) -> PreparedPhoto:
        """Load a photo (path, bytes, PIL image or array), find every face (largest first), align each to the
        model's template and read its labels. Raises FaceError when the photo is unusable or has no face."""
        image = load_image(photo, max_pixels=self.max_pixels)
        h, w = image.shape[:2]
        if min(h, w) < 16:
            raise FaceError(f"the image is only {w}x{h} pixels: too small to hold a face; use a photo where the "
                            "face is at least ~40 pixels wide")
        faces = self.detector.detect(image)
        if not faces:
            raise FaceError(f"no face found in the {w}x{h} photo: use a photo with a clearly visible, roughly "
                            "frontal face at least ~40 pixels wide")
        if len(faces) > self.max_faces:
            logger.info("%d faces found; keeping the %d largest", len(faces), self.max_faces)
            faces = faces[: self.max_faces]
        crops, matrices = [], []
        for f in faces:
            aligned = align(image, f, self.template, self.image_size, border="soft")
            crops.append(aligned.image)
            matrices.append(aligned.matrix)
        tensors = to_tensor(np.stack(crops))
        source = self.read_labels(tensors)
        prepared = [PreparedFace(i, f, crops[i], face_view(image, matrices[i], self.image_size), matrices[i],
                                 tensors[i], source[i], self.labels_by_name(source[i])) for i, f in enumerate(faces)]
        return PreparedPhoto(image, prepared)

    # ---- targets -----------------------------------------------------------------------------------------------
    def check_settings(self, settings: Mapping[str, float]) -> dict[str, dict[str, float]]:
        """The settings grouped by dataset; an unknown name or a value outside [0, 1] raises (KeyError, ValueError)."""
        by_dataset: dict[str, dict[str, float]] = {}
        for name, value in settings.items():
            if name not in self.names:
                raise KeyError(f"{name!r} is not a label of this model; it knows: {', '.join(self.names)}")
            value = float(value)
            if not 0.0 <= value <= 1.0 or value != value:
                raise ValueError(f"{name}={value}: intensities must lie in [0, 1]")
            by_dataset.setdefault(self.space.dataset_of(name).name, {})[name] = value
        return by_dataset

    def target_values(self, d: DatasetLabels, settings: Mapping[str, float], source: torch.Tensor,
                      related: bool = RELATED_BY_DEFAULT) -> torch.Tensor:
        """One face's target for dataset ``d`` from its source block values and the names the user set.

        Binary: the source with the set names replaced (hair colours stay exclusive) and, with ``related``, the
        attributes that go with them moved along (``domains.RELATED_ATTRIBUTES``). Categorical: the set
        names take their weights and the rest of the probability mass goes to the other names in the
        proportions the face shows now; all names set means exactly those weights (normalised)."""
        source = torch.as_tensor(source, dtype=torch.float32).reshape(len(d))
        if d.kind == BINARY:
            target = self.space.values(settings, base=source, dataset=d.name)
            return self.space.with_related(target, source, list(settings), d.name) if related else target
        if set(settings) >= set(d.names):
            full = dict(settings)
        else:
            rest = max(0.0, 1.0 - sum(settings.values()))
            unset = [n for n in d.names if n not in settings]
            mass = float(sum(source[d.index(n)] for n in unset))
            full = dict(settings)
            for n in unset:
                full[n] = rest * (float(source[d.index(n)]) / mass if mass > 0 else 1.0 / len(unset))
        if sum(full.values()) <= 0:
            return source.clone()  # every weight at 0: no expression asked for, so no change
        return self.space.values(full, dataset=d.name)

    # ---- translating ---------------------------------------------------------------------------------------------
    def _g(self, x: torch.Tensor, c: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """G(x, c) for faces whose own labels (G's layout) are ``source``."""
        with torch.inference_mode(), self._autocast():
            return self.generator(x.to(self.device), c.to(self.device), source=source.to(self.device)).float().cpu()

    def _run(self, x: torch.Tensor, source: torch.Tensor, settings: Mapping[str, float], mode: str,
             caches: Sequence[dict[str, torch.Tensor]] | None = None, strength: float = 1.0,
             related: bool = RELATED_BY_DEFAULT, regions: torch.Tensor | None = None) -> torch.Tensor:
        """The chained passes; returns the edited faces (B, 3, S, S) in [-1, 1]. ``strength`` multiplies each
        pass's change (1 = G's own edit; more exaggerates a subtle one); ``related``: see target_values;
        ``regions`` (B, 2, S, S), stargan.regions: each pass's change is kept to its region (None: anywhere)."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: use one of {', '.join(MODES)}")
        strength = float(strength)
        if not 0.0 <= strength <= MAX_STRENGTH:  # also refuses NaN
            raise ValueError(f"strength {strength}: use a value from 0 to {MAX_STRENGTH:g} (1 = the model's own edit)")
        by_dataset = self.check_settings(settings)
        current = x.clone()
        first = True
        for d in _dataset_order(self.space):
            if d.name not in by_dataset:
                continue
            sl = self.space.block(d.name)
            src = source[:, sl]
            tgt = torch.stack([self.target_values(d, by_dataset[d.name], row, related) for row in src])
            moved = (tgt - src).abs() > 1e-6  # per face and name
            changed = moved.any(1)
            if not bool(changed.any()):
                continue
            c_t, c_s = self.space.g_label(tgt, d.name), self.space.g_label(src, d.name)
            if mode == "delta":
                cached = first and caches is not None and all(d.name in cache for cache in caches)
                if cached:
                    y_t, y_s = self._g(current, c_t, c_s), torch.stack([cache[d.name] for cache in caches])
                else:
                    y = self._g(torch.cat([current, current]), torch.cat([c_t, c_s]), torch.cat([c_s, c_s]))
                    y_t, y_s = y[: len(x)], y[len(x):]
                    if first and caches is not None:
                        for cache, row in zip(caches, y_s, strict=True):
                            cache[d.name] = row
                step = y_t - y_s
            else:
                step = self._g(current, c_t, c_s) - current
            step = step * strength
            if d.kind == CATEGORICAL:  # keep the photo's colour: the expression data is mostly grayscale
                step = within_gamut(luminance(step), current)
            if regions is not None:
                step = keep_in_region(step, regions, [[n for n, m in zip(d.names, row) if m] for row in moved])
            step = step * changed.view(-1, 1, 1, 1)
            current = (current + step).clamp(-1, 1)
            first = False
        return current

    def translate(self, faces: torch.Tensor | np.ndarray, settings: Mapping[str, float],
                  source_labels: torch.Tensor | None = None, strength: float = 1.0,
                  related: bool = RELATED_BY_DEFAULT, regions: torch.Tensor | None = None) -> torch.Tensor:
        """G's translation of aligned faces towards ``settings`` ({name: intensity in [0, 1]}).

        ``faces``: (B, 3, S, S) in [-1, 1], or uint8 (B, S, S, 3) / (S, S, 3). ``source_labels``: (B, d_dim) in
        D_cls layout, the labels the faces have now (read with D_cls when None); names not in ``settings`` keep
        them. ``regions``: see change(). Returns G's output (B, 3, S, S) in [-1, 1], chained over datasets, the
        expression pass keeping the input's colour."""
        x = to_tensor(faces) if isinstance(faces, np.ndarray) else torch.as_tensor(faces, dtype=torch.float32)
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2:] != (self.image_size, self.image_size):
            raise ValueError(f"faces must be (B, 3, {self.image_size}, {self.image_size}), got {tuple(x.shape)}")
        source = self.read_labels(x) if source_labels is None else torch.as_tensor(source_labels, dtype=torch.float32)
        return self._run(x, source.reshape(len(x), -1), settings, "direct", strength=strength, related=related,
                         regions=regions)

    def change(self, faces: torch.Tensor, settings: Mapping[str, float], source_labels: torch.Tensor,
               strength: float = 1.0, related: bool = RELATED_BY_DEFAULT, regions: torch.Tensor | None = None) -> torch.Tensor:
        """The change the demo pastes for aligned faces (B, 3, S, S) in [-1, 1] with D_cls readings
        ``source_labels``: G(x, c_target) - G(x, c_source) per pass, an expression's as luminance, kept to
        ``regions`` (B, 2, H, H) from ``face_regions`` where given (the demo's default; ``regions_of`` makes
        them), clipped to the image range. Evaluation scores exactly this."""
        x = torch.as_tensor(faces, dtype=torch.float32)
        source = torch.as_tensor(source_labels, dtype=torch.float32).reshape(len(x), -1)
        return self._run(x, source, settings, "delta", strength=strength, related=related, regions=regions) - x

    def regions_for(self, face: PreparedFace) -> torch.Tensor:
        """A prepared face's edit regions (2, S, S), found once, at its first edit (a photo's other faces cost
        nothing until edited), from its view: the photo's detail, where the crop has only G's 64 px."""
        if face._regions is None:
            face._regions = torch.from_numpy(face_regions(face.view, self.template, self.image_size))
        return face._regions

    def regions_of(self, faces: torch.Tensor) -> torch.Tensor:
        """Edit regions (B, 2, S, S) at the model's size for aligned faces (B, 3, H, H) in [-1, 1] at any
        size (the larger, up to REGION_SIZE, the better they follow the hair)."""
        return torch.from_numpy(np.stack([face_regions(face, self.template, self.image_size)
                                          for face in to_uint8(faces)]))

    def edit(self, prepared: PreparedPhoto, settings: Mapping[str, float], face: int | str = 0,
             mode: Mode = "delta", strength: float = 1.0, upsample: Upsample = DEFAULT_UPSAMPLE,
             related: bool = RELATED_BY_DEFAULT, regions: bool = True) -> EditResult:
        """Edit one face (index, largest first) or ``"all"`` faces of a prepared photo and paste back.
        ``strength`` (0 to 3) multiplies the change G makes. ``upsample`` brings G's change (mode "delta") to
        the photo's resolution: "guided" along the photo's own edges, or "bilinear" (face.DEFAULT_UPSAMPLE by
        default, chosen by measurement). ``related``: move the attributes that go with an edit along with it
        (make-up with gender, the mouth with a smile; see target_values). ``regions``: keep each edit to its
        region (a hair colour on the hair, no edit on the background; stargan.regions)."""
        t0 = time.perf_counter()
        if face == "all":
            chosen = list(prepared.faces)
        else:
            try:
                index = int(face)
            except (TypeError, ValueError):
                raise ValueError(f"face {face!r}: use a face number or 'all'") from None
            if not 0 <= index < len(prepared.faces):
                raise ValueError(f"face {index} does not exist: the photo has {len(prepared.faces)} face(s), "
                                 f"numbered 0 to {len(prepared.faces) - 1}")
            chosen = [prepared.faces[index]]
        x = torch.stack([f.tensor for f in chosen])
        source = torch.stack([f.source for f in chosen])
        edited = self._run(x, source, settings, mode, caches=[f._cache for f in chosen], strength=strength,
                           related=related, regions=torch.stack([self.regions_for(f) for f in chosen]) if regions else None)
        after = to_uint8(edited)
        photo = prepared.photo
        for f, out, new in zip(chosen, after, edited, strict=True):
            if mode == "delta":
                delta = (new - f.tensor).permute(1, 2, 0).numpy() * 127.5
                if np.any(delta):
                    photo = paste_delta(photo, delta, f.matrix, feather=self.feather, upsample=upsample)
            else:
                photo = paste_back(photo, out, f.matrix, feather=self.feather)
        views = [f.view if photo is prepared.photo else face_view(photo, f.matrix, self.image_size) for f in chosen]
        return EditResult(photo=photo, before=[f.view for f in chosen], after=views,
                          face_indices=[f.index for f in chosen], mode=mode, seconds=time.perf_counter() - t0)

    def edit_photo(self, photo: str | Path | bytes | np.ndarray | Any, settings: Mapping[str, float],
                   face: int | str = 0, mode: Mode = "delta", strength: float = 1.0,
                   upsample: Upsample = DEFAULT_UPSAMPLE, related: bool = RELATED_BY_DEFAULT, regions: bool = True) -> EditResult:
        """prepare() and edit() in one call."""
        return self.edit(self.prepare(photo), settings, face, mode, strength, upsample, related, regions)
