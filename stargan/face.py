"""Face detection (MTCNN), alignment to a model's template, and paste-back (DESIGN decision 5).

Coordinates: landmarks are (x, y) in pixels of the photo, in MTCNN's convention (pixel centres at integer
coordinates). A template is 5 points (left eye, right eye, nose, left mouth corner, right mouth corner)
normalised to [0, 1] of the model's square input: pixel = normalised * size.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

# Measured with MTCNN over every 10th image of data/celeba_hq_128 (DESIGN decision 5).
CELEBA_HQ_128_TEMPLATE: tuple[tuple[float, float], ...] = (
    (0.3815, 0.4791), (0.6292, 0.4791), (0.5000, 0.6350), (0.3939, 0.7375), (0.6149, 0.7369),
)
# CelebA's mean aligned landmarks for the original StarGAN models (img_align_celeba, centre crop 178, resize).
CELEBA_ALIGNED_TEMPLATE: tuple[tuple[float, float], ...] = (
    (0.3876, 0.5112), (0.6067, 0.5112), (0.4944, 0.6517), (0.4045, 0.7416), (0.5899, 0.7416),
)
TEMPLATES: dict[str, tuple[tuple[float, float], ...]] = {
    "celeba_hq_128": CELEBA_HQ_128_TEMPLATE,
    "celeba_aligned": CELEBA_ALIGNED_TEMPLATE,
}

# 80 megapixels: above every phone camera (a 64 MP photo is ~9250x6950), far below a decompression bomb.
DEFAULT_MAX_PIXELS = 80_000_000

# Upsampling G's change to the photo (paste_delta). The guided filter's settings were chosen by measurement
# (benchmarks/upsample_compare.py; benchmarks/HISTORY.md, "Edge-aware upsampling").
UPSAMPLES = ("guided", "bilinear")
Upsample = Literal["guided", "bilinear"]
DEFAULT_UPSAMPLE: Upsample = "bilinear"  # measured closer to the true edit than guided (HISTORY.md)
GUIDED_RADIUS = 0.5  # window radius, in pixels of the model's crop
GUIDED_EPS = 1e-4  # regularisation, guide in [0, 1]
GUIDED_COLOUR = False  # guide by the photo's luminance (True: by its colour)

BORDERS = {
    "reflect": cv2.BORDER_REFLECT_101,  # mirrors the photo: no edge pixels smeared into the crop
    "constant": cv2.BORDER_CONSTANT,
    "replicate": cv2.BORDER_REPLICATE,
    # mirror next to the photo's edge, fading into a heavy blur of the mirror further out: a continuous
    # edge without the sharp mirrored copies of the face that plain reflection puts around tight crops
    "soft": cv2.BORDER_REFLECT_101,
}


class FaceError(ValueError):
    """An input the face pipeline cannot use (not an image, too large, bad shape); the message says why."""


# ----------------------------------------------------------------------------------------------- loading
def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 RGB. Transparent pixels are composited on white."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit greyscale comes as I;16* (or I from older Pillow); scale to 8 bits instead of clipping.
        if mode.startswith("I;16") or arr.max(initial=0) > 255:
            arr = arr / 257.0
        grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "CMYK" and img.info.get("icc_profile"):
        try:  # a colour-managed conversion is much closer than Pillow's naive CMYK formula
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
            dst = ImageCms.createProfile("sRGB")
            return np.asarray(ImageCms.profileToProfile(img, src, dst, outputMode="RGB"))
        except Exception:
            logger.debug("CMYK ICC conversion failed; using Pillow's plain conversion", exc_info=True)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def _array_to_rgb(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise FaceError(f"expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.dtype == np.uint8:
        pass
    elif arr.dtype == np.uint16:
        arr = np.rint(arr / 257.0).astype(np.uint8)
    elif arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        # floats in [0, 1] are the common convention (skimage, torchvision); anything larger is 0..255
        scale = 255.0 if float(np.nanmax(arr, initial=0.0)) <= 1.0 else 1.0
        arr = np.clip(np.rint(np.nan_to_num(arr) * scale), 0, 255).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer):
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    else:
        raise FaceError(f"unsupported image array dtype {arr.dtype}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        arr = np.rint(arr[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(arr)


def load_image(
    source: str | Path | bytes | Image.Image | np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Read a photo as (H, W, 3) uint8 RGB, upright by its EXIF orientation.

    Accepts a path, encoded bytes, a PIL image or an array. Raises FaceError for a file that is not an image
    or whose dimensions exceed `max_pixels` (checked from the header, before decoding: decompression bombs).
    """
    if isinstance(source, np.ndarray):
        arr = _array_to_rgb(source)
        if arr.shape[0] * arr.shape[1] > max_pixels:
            raise FaceError(f"image of {arr.shape[1]}x{arr.shape[0]} pixels exceeds the limit of {max_pixels}")
        return arr
    what = "image"
    if isinstance(source, Image.Image):
        img = source
    else:
        if isinstance(source, (bytes, bytearray)):
            fp: io.BytesIO | Path = io.BytesIO(bytes(source))
            what = "uploaded bytes"
        else:
            fp = Path(source)
            what = str(fp)
            if not fp.is_file():
                raise FileNotFoundError(f"no such image file: {fp}")
        try:
            with warnings.catch_warnings():
                # our own limit below decides; Pillow's warning would only be noise
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(fp)
        except Image.DecompressionBombError as exc:
            raise FaceError(f"{what}: refused, its dimensions are decompression-bomb sized ({exc})") from exc
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise FaceError(
                f"{what} is not an image file Pillow can read (use JPEG, PNG, WebP, BMP, TIFF or GIF): {exc}"
            ) from exc
    width, height = img.size
    if width * height > max_pixels:
        raise FaceError(
            f"{what}: {width}x{height} = {width * height / 1e6:.0f} megapixels exceeds the limit of "
            f"{max_pixels / 1e6:.0f} megapixels (a decompression bomb or an unusually huge photo); "
            "downscale it first"
        )
    if width == 0 or height == 0:
        raise FaceError(f"{what} is empty ({width}x{height})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = ImageOps.exif_transpose(img)  # decodes; phones store portraits sideways plus a tag
            return np.ascontiguousarray(_to_rgb_array(img))
    except (OSError, SyntaxError, ValueError) as exc:
        raise FaceError(f"{what} could not be decoded (truncated or corrupt?): {exc}") from exc


# --------------------------------------------------------------------------------------------- detection
@dataclass
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in photo pixels
    score: float
    landmarks: np.ndarray  # (5, 2) float: left eye, right eye, nose, left mouth, right mouth

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


class FaceDetector:
    """MTCNN (facenet-pytorch, weights shipped in the package) on a resized copy of the photo.

    Large photos are downscaled so the longest side is at most `max_side` (speed); small ones are upscaled so
    the shortest side is at least `min_side` (MTCNN cannot see faces in e.g. 48 px crops otherwise).
    Faces scoring below `min_score` are dropped.
    """

    def __init__(
        self,
        device: str = "cpu",
        max_side: int = 640,
        min_side: int = 160,
        min_face_size: int = 20,
        min_score: float = 0.9,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
    ) -> None:
        import torch
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

        self.device = torch.device(device)
        self.max_side = max_side
        self.min_side = min_side
        self.min_face_size = min_face_size
        self.min_score = min_score
        self.thresholds = list(thresholds)
        self.factor = 0.709
        self.pnet = PNet().to(self.device).eval()
        self.rnet = RNet().to(self.device).eval()
        self.onet = ONet().to(self.device).eval()

    def _scale_for(self, height: int, width: int) -> float:
        scale = min(1.0, self.max_side / max(height, width))
        if min(height, width) * scale < self.min_side:
            scale = self.min_side / min(height, width)
            scale = min(scale, 4.0 * self.max_side / max(height, width))  # extreme aspect ratios
        return scale

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in an (H, W, 3) uint8 RGB photo, largest first; [] when there is none."""
        import torch
        from facenet_pytorch.models.utils.detect_face import detect_face

        image = _array_to_rgb(np.asarray(image))
        height, width = image.shape[:2]
        scale = self._scale_for(height, width)
        if scale != 1.0:
            new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
            interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
            src = image
            step = int(1.0 / scale) // 2
            if step >= 2:  # skip rows/columns first: INTER_AREA over all 12 MP costs ~35 ms, this ~15 ms
                src = image[step // 2 :: step, step // 2 :: step]  # block centres: no half-block shift
            small = cv2.resize(src, new_size, interpolation=interp)
            sx, sy = new_size[0] / width, new_size[1] / height
        else:
            small, sx, sy = image, 1.0, 1.0
        if min(small.shape[:2]) < 12:  # below PNet's receptive field: MTCNN would fail on an empty pyramid
            return []
        try:
            with torch.inference_mode():
                boxes, points = detect_face(
                    small, self.min_face_size, self.pnet, self.rnet, self.onet,
                    self.thresholds, self.factor, self.device,
                )
        except (RuntimeError, ValueError, IndexError) as exc:
            # MTCNN's pipeline has corner cases (e.g. no candidates at any scale); no face is the answer
            logger.warning("MTCNN found nothing usable in a %dx%d image: %s", width, height, exc)
            return []
        # facenet-pytorch returns per-image object arrays (numpy 2); take this one image's float arrays
        boxes = np.asarray(boxes[0], dtype=np.float64).reshape(-1, 5)
        points = np.asarray(points[0], dtype=np.float64).reshape(-1, 5, 2)
        # map back to the photo: x_photo = (x_small + 0.5) / s - 0.5 keeps pixel centres aligned
        faces = []
        for box, pts in zip(boxes, points):
            score = float(box[4])
            if score < self.min_score or not np.all(np.isfinite(pts)):
                continue
            lm = np.empty((5, 2))
            lm[:, 0] = (pts[:, 0] + 0.5) / sx - 0.5
            lm[:, 1] = (pts[:, 1] + 0.5) / sy - 0.5
            x0, y0, x1, y1 = box[0] / sx, box[1] / sy, box[2] / sx, box[3] / sy
            faces.append(Face((float(x0), float(y0), float(x1), float(y1)), score, lm))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces


# --------------------------------------------------------------------------------------------- alignment
def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping src to dst.

    Umeyama (1991). Returns the (2, 3) matrix M with dst ~ M @ [x, y, 1].
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise FaceError(f"need matching point sets of at least 2 points, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    var_s = (sc**2).sum() / len(src)
    if var_s <= 1e-12:
        raise FaceError("landmarks are all at one point; cannot align")
    cov = dc.T @ sc / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])
    rot = u @ np.diag(d) @ vt
    scale = float((s * d).sum() / var_s)
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def template_points(template: Sequence[Sequence[float]] | np.ndarray, size: int) -> np.ndarray:
    """A normalised template as (5, 2) pixel coordinates of a size x size crop."""
    pts = np.asarray(template, dtype=np.float64).reshape(5, 2)
    return pts * size


def parse_template(spec: str) -> np.ndarray:
    """A template from a name in TEMPLATES or 10 comma-separated numbers x1,y1,...,x5,y5 in [0, 1]."""
    if spec in TEMPLATES:
        return np.asarray(TEMPLATES[spec], dtype=np.float64)
    try:
        values = [float(v) for v in spec.split(",")]
    except ValueError:
        values = []
    if len(values) != 10 or not all(0.0 <= v <= 1.0 for v in values):
        raise FaceError(
            f"template {spec!r}: use one of {sorted(TEMPLATES)} or 10 numbers in [0, 1] "
            "(x,y of left eye, right eye, nose, left mouth corner, right mouth corner)"
        )
    return np.asarray(values, dtype=np.float64).reshape(5, 2)


@dataclass
class AlignedFace:
    image: np.ndarray  # (size, size, 3) uint8
    matrix: np.ndarray  # (2, 3) photo -> crop
    face: Face | None


def _border_flag(border: str | int) -> int:
    if isinstance(border, int):
        return border
    if border not in BORDERS:
        raise FaceError(f"border {border!r}: use one of {sorted(BORDERS)}")
    return BORDERS[border]


def warp_to_crop(image: np.ndarray, matrix: np.ndarray, size: int, border: str | int = "reflect") -> np.ndarray:
    """Resample the photo into the size x size crop that `matrix` (photo -> crop) defines, antialiased.

    warpAffine only interpolates bilinearly, which aliases when a large face shrinks to 128 px; so the part
    of the photo the crop samples is first shrunk with INTER_AREA to about the crop's scale.
    """
    flag = _border_flag(border)
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if scale < 0.8:
        h, w = image.shape[:2]
        inv = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
        pc = corners @ inv.T
        x0 = max(0, math.floor(pc[:, 0].min()) - 3)
        y0 = max(0, math.floor(pc[:, 1].min()) - 3)
        x1 = min(w, math.ceil(pc[:, 0].max()) + 4)
        y1 = min(h, math.ceil(pc[:, 1].max()) + 4)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            roi = image[y0:y1, x0:x1]
            new_w = max(1, round((x1 - x0) * scale))
            new_h = max(1, round((y1 - y0) * scale))
            small = cv2.resize(roi, (new_w, new_h), interpolation=cv2.INTER_AREA)
            kx, ky = new_w / (x1 - x0), new_h / (y1 - y0)
            # small coords q = (p - origin + 0.5) * k - 0.5  =>  p = (q + 0.5) / k - 0.5 + origin
            q_to_p = np.array([[1 / kx, 0, 0.5 / kx - 0.5 + x0], [0, 1 / ky, 0.5 / ky - 0.5 + y0], [0, 0, 1]])
            m = matrix @ q_to_p
            # the region is clipped only where the photo ends, so the border mode acts where it should
            return cv2.warpAffine(small, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=flag)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=flag)


def align(
    image: np.ndarray,
    face_or_landmarks: Face | np.ndarray,
    template: Sequence[Sequence[float]] | np.ndarray = CELEBA_HQ_128_TEMPLATE,
    size: int = 128,
    border: str | int = "reflect",
) -> AlignedFace:
    """Crop the face to the model's framing: the similarity transform taking its 5 landmarks to the template.

    `border` fills crop pixels outside the photo: "reflect" (mirror, default: nothing smeared into the
    face), "constant" (black) or "replicate".
    """
    face = face_or_landmarks if isinstance(face_or_landmarks, Face) else None
    landmarks = face.landmarks if face is not None else np.asarray(face_or_landmarks, dtype=np.float64)
    matrix = similarity_transform(landmarks, template_points(template, size))
    crop = warp_to_crop(image, matrix, size, border)
    if border == "soft":
        crop = _soften_border(crop, matrix, image.shape)
    return AlignedFace(image=crop, matrix=matrix, face=face)


def outside_photo(matrix: np.ndarray, size: int, shape: tuple[int, ...]) -> np.ndarray:
    """(size, size) bool: crop pixels whose source lies outside the photo (filled by the border mode)."""
    inv = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    px = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    py = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    h, w = shape[:2]
    return (px < -0.5) | (py < -0.5) | (px > w - 0.5) | (py > h - 0.5)


def _soften_border(crop: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    size = crop.shape[0]
    outside = outside_photo(matrix, size, shape)
    if not outside.any():
        return crop
    dist = cv2.distanceTransform(outside.astype(np.uint8), cv2.DIST_L2, 5)
    reach = size / 16  # the mirror fades out over ~8 px at 128 px
    weight = np.clip(dist / reach, 0.0, 1.0)[:, :, None]
    blurred = cv2.GaussianBlur(crop.astype(np.float32), (0, 0), sigmaX=size / 10, borderType=cv2.BORDER_REFLECT_101)
    out = crop.astype(np.float32) * (1.0 - weight) + blurred * weight
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (N, 2) points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ matrix[:, :2].T + matrix[:, 2]


# ------------------------------------------------------------------------------------------- paste-back
def crop_mask(size: int, feather: float = 0.12, margin: float = 0.02) -> np.ndarray:
    """(size, size) float32 blend weight in crop space: 1 in the middle, a smooth (cosine) fall to 0 at the
    crop's edges, so the pasted face has no seam. `feather` and `margin` are fractions of the crop size."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    dist = np.minimum(coords, 1.0 - coords)  # distance to the nearest edge, per axis
    ramp = np.clip((dist - margin) / max(feather, 1e-6), 0.0, 1.0)
    ramp = 0.5 - 0.5 * np.cos(np.pi * ramp)
    return np.outer(ramp, ramp).astype(np.float32)


def _footprint(matrix: np.ndarray, size: int, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """The photo rectangle the crop covers (clipped), or None when it is entirely outside the photo."""
    inv = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64) @ inv.T
    h, w = shape[:2]
    x0 = max(0, math.floor(corners[:, 0].min()) - 1)
    y0 = max(0, math.floor(corners[:, 1].min()) - 1)
    x1 = min(w, math.ceil(corners[:, 0].max()) + 2)
    y1 = min(h, math.ceil(corners[:, 1].max()) + 2)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _warp_back(array: np.ndarray, matrix: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    """Crop-space array -> photo rectangle `roi`, by the inverse of `matrix` (photo -> crop)."""
    x0, y0, x1, y1 = roi
    # photo pixel p in the roi = q + origin; the crop samples it at matrix @ (q + origin)
    shifted = np.asarray(matrix, dtype=np.float64).copy()
    shifted[:, 2] += shifted[:, :2] @ np.array([x0, y0], dtype=np.float64)
    return cv2.warpAffine(
        array, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )


def _paste(photo: np.ndarray, size: int, matrix: np.ndarray, feather: float, mask: np.ndarray | None, blend) -> np.ndarray:
    """Shared by the two paste-backs: the photo rectangle under the crop's footprint is replaced by
    blend(region, weights), where weights is the crop-space feathered mask."""
    photo = _array_to_rgb(np.asarray(photo))
    weights = crop_mask(size, feather) if mask is None else np.asarray(mask, dtype=np.float32)
    roi = _footprint(matrix, size, photo.shape)
    out = photo.copy()
    if roi is None:
        return out
    x0, y0, x1, y1 = roi
    region = photo[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(np.rint(blend(region, weights, roi)), 0, 255).astype(np.uint8)
    return out


def paste_back(
    photo: np.ndarray,
    crop: np.ndarray,
    matrix: np.ndarray,
    feather: float = 0.12,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Put an (edited) crop back into the photo: inverse warp, blended by a feathered mask (crop space).

    Only pixels under the crop's footprint change; the mask fades to 0 at the crop's edges, so no seam.
    """
    crop = np.asarray(crop, dtype=np.float32)

    def blend(region, weights, roi):
        alpha = _warp_back(weights, matrix, roi)[:, :, None]
        return region + alpha * (_warp_back(crop, matrix, roi) - region)

    return _paste(photo, crop.shape[0], matrix, feather, mask, blend)


def model_pixel(matrix: np.ndarray) -> float:
    """How many photo pixels one pixel of the crop spans, for a photo -> crop similarity ``matrix``."""
    return 1.0 / math.sqrt(abs(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2])))


def guided_upsample(change: np.ndarray, guide: np.ndarray, scale: float, radius: float = GUIDED_RADIUS,
                    eps: float = GUIDED_EPS, colour: bool = GUIDED_COLOUR) -> np.ndarray:
    """An edit's change, already bilinearly upsampled to the photo, made to follow the photo's own edges.

    The guided filter (He et al., TPAMI 2013; used for exactly this by Wu et al., CVPR 2018), OpenCV contrib's
    ``cv2.ximgproc.guidedFilter``: in each window the change is fitted as a linear function of the photo
    (`guide`, (h, w, 3) uint8 or float 0..255), so where the photo has an edge the change can step with it.
    `scale` is how many photo pixels one pixel of the model's crop spans (model_pixel); the window radius is
    `radius` model pixels, `eps` the regularisation (guide in [0, 1]: larger keeps the change smoother),
    `colour` guides by RGB (else by luminance). Faces at or below the model's own size are returned as given.
    """
    r = round(radius * scale)
    if scale <= 1.0 or r < 1:
        return change
    guide = np.asarray(guide, dtype=np.float32) / 255.0
    if not colour:
        guide = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY)
    return cv2.ximgproc.guidedFilter(guide, np.asarray(change, dtype=np.float32), r, eps)


def paste_delta(
    photo: np.ndarray,
    delta: np.ndarray,
    matrix: np.ndarray,
    feather: float = 0.12,
    mask: np.ndarray | None = None,
    upsample: Upsample = DEFAULT_UPSAMPLE,
    radius: float = GUIDED_RADIUS,
    eps: float = GUIDED_EPS,
    colour: bool = GUIDED_COLOUR,
) -> np.ndarray:
    """Add an edit (crop-space float delta, pixel units 0..255 scale, e.g. G(x, c_trg) - G(x, c_src)) to the
    full-resolution photo under the same feathered mask as paste_back, so whatever the edit leaves alone keeps
    the photo's own detail. `upsample` (default DEFAULT_UPSAMPLE): "guided" brings the change to the photo's
    resolution along the photo's own edges (guided_upsample, with `radius`, `eps` and `colour`); "bilinear" only interpolates it
    (it then blurs across the photo's edges)."""
    if upsample not in UPSAMPLES:
        raise ValueError(f"upsample {upsample!r}: use one of {', '.join(UPSAMPLES)}")
    delta = np.asarray(delta, dtype=np.float32)

    def blend(region, weights, roi):
        if upsample == "bilinear":  # the default and the slider's hot path: one warp of the masked change
            return region + _warp_back(delta * weights[:, :, None], matrix, roi)
        change = guided_upsample(_warp_back(delta, matrix, roi), region, model_pixel(matrix), radius, eps, colour)
        return region + _warp_back(weights, matrix, roi)[:, :, None] * change

    return _paste(photo, delta.shape[0], matrix, feather, mask, blend)


def face_view(image: np.ndarray, matrix: np.ndarray, size: int, max_side: int = 512) -> np.ndarray:
    """The aligned face of a (size x size) crop's `matrix`, resampled from the photo at the face's own
    resolution (capped at `max_side`, never below `size`): the framing the model sees, the photo's detail.
    Parts outside the photo are black."""
    matrix = np.asarray(matrix, dtype=np.float64)
    side = int(min(max_side, max(size, round(size * model_pixel(matrix)))))
    k = side / size
    scaled = matrix * k
    scaled[:, 2] += (k - 1) / 2  # pixel centres: q' = k (q + 0.5) - 0.5
    return warp_to_crop(image, scaled, side, border="constant")


# --------------------------------------------------------------------------------- template measurement
def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to size x size, the way a training loader frames an image."""
    h, w = image.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    square = image[y0:y0 + side, x0:x0 + side]
    if side == size:
        return square
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(square, (size, size), interpolation=interp)


def measure_template(
    paths: Iterable[str | Path], size: int = 128, detector: FaceDetector | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean MTCNN landmarks of a set of training images, normalised to the square model input.

    Each image is framed as the training loader would (centre square, resized to `size`); the largest face's
    landmarks are divided by `size`. Returns (template (5, 2), spread (5, 2): standard deviation per
    coordinate). Raises FaceError when no image had a face.
    """
    detector = detector or FaceDetector()
    points = []
    n_seen = 0
    for path in paths:
        n_seen += 1
        try:
            image = square_resize(load_image(path), size)
        except FaceError as exc:
            logger.warning("skipping %s: %s", path, exc)
            continue
        faces = detector.detect(image)
        if faces:
            points.append(faces[0].landmarks / size)
        if n_seen % 100 == 0:
            logger.info("measure-template: %d images, %d faces", n_seen, len(points))
    if not points:
        raise FaceError(f"no face found in any of the {n_seen} images; cannot measure a template")
    stacked = np.stack(points)
    logger.info("measure-template: %d faces in %d images", len(points), n_seen)
    return stacked.mean(0), stacked.std(0)


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def _measure_cli(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        print(f"error: {root} is not a folder", file=sys.stderr)
        return 2
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    sample = files[:: max(1, args.every)]
    if not sample:
        print(f"error: no images under {root}", file=sys.stderr)
        return 2
    try:
        template, spread = measure_template(sample, args.size)
    except FaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = {
        "dir": str(root),
        "images": len(sample),
        "every": args.every,
        "size": args.size,
        "template": [[round(float(v), 4) for v in p] for p in template],
        "spread": [[round(float(v), 4) for v in p] for p in spread],
        "order": ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"],
    }
    print(json.dumps(result, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stargan.face", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure-template", help="mean MTCNN landmarks of a folder of training images")
    m.add_argument("dir", help="folder of images (searched recursively)")
    m.add_argument("--every", type=int, default=10, help="use every N-th image in sorted order")
    m.add_argument("--size", type=int, default=128, help="the model's square input size")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return _measure_cli(args)


if __name__ == "__main__":
    sys.exit(main())
