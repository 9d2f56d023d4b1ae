"""Where an edit may change a face: per-pixel regions of an aligned face.

G works at 64 px and does not know exactly where the hair ends: its hair-colour change also tints the skin (gray
hair whitens the face, blond yellows it) and leaves a halo on the background, and every edit changes the
background a little (benchmarks/HISTORY.md, "Edit regions"). The editor multiplies G's change by a region:

* ``hair`` for a hair colour: the person, less the face and the skin round it;
* ``person`` for every other edit: everything but the background.

Both come from the aligned face at ``REGION_SIZE`` px, in three parts:

* the face core: an ellipse from the alignment template (brows to chin, cheek to cheek). Every face the model
  sees is aligned to that template, so the geometry is the same for all of them;
* the person: GrabCut (Rother et al., SIGGRAPH 2004, OpenCV's ``cv2.grabCut``) started from the template's head
  and shoulders, the face and the ring round it fixed as foreground, joined with an ellipse round the head where
  every face has hair (GrabCut alone loses blond hair against a pale background, and the hair edit with it).
  Where it fails outright (it keeps almost the whole crop), the head-and-shoulders shape itself;
* skin near the face: pixels whose colour is close to the cheeks' (a Mahalanobis distance in YCrCb, loose in
  brightness: shading changes it, not the skin), within a ring round the face core (forehead, ears, neck), so
  that hair as pale as the skin further out still takes a new colour.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .domains import HAIR_COLOURS
from .face import template_points

REGION_SIZE = 128  # regions are found at this size (64 px is too coarse for GrabCut) and resized to the model's
REGIONS = ("person", "hair")  # channel order of a regions array
GRABCUT_ITERATIONS = 4
PERSON_MAX_SHARE = 0.85  # more of the crop than this is a failed segmentation (the head and shoulders cover ~60%)
SKIN_SIGMA2 = (100.0, 4.0, 4.0)  # added to the cheeks' YCrCb covariance: brightness varies with light, chroma less
SKIN_DISTANCE = (4.0, 9.0)  # squared Mahalanobis distance: skin below the first, not skin above the second


def _ellipse(shape: tuple[int, int], centre: Sequence[float], axes: Sequence[float]) -> np.ndarray:
    """Squared normalised radius of every pixel from an axis-aligned ellipse (< 1 inside)."""
    yy, xx = np.mgrid[0: shape[0], 0: shape[1]].astype(np.float32) + 0.5
    return ((xx - centre[0]) / axes[0]) ** 2 + ((yy - centre[1]) / axes[1]) ** 2


def _soft(radius2: np.ndarray, edge: float, width: float) -> np.ndarray:
    """1 well inside ``radius2 < edge``, falling linearly to 0 over ``width``."""
    return np.clip((edge - radius2) / width, 0.0, 1.0).astype(np.float32)


class _Geometry:
    """The template's landmarks at ``size`` px and the shapes built from them."""

    def __init__(self, template: Sequence[Sequence[float]] | np.ndarray, size: int) -> None:
        left_eye, right_eye, nose, left_mouth, right_mouth = template_points(template, size)
        self.shape = (size, size)
        self.eyes_x = (left_eye[0] + right_eye[0]) / 2
        self.eyes_y = (left_eye[1] + right_eye[1]) / 2
        self.mouth_y = (left_mouth[1] + right_mouth[1]) / 2
        self.nose = nose
        self.d = float(np.linalg.norm(right_eye - left_eye))  # inter-ocular distance: the unit of every shape
        self.face_centre = (self.eyes_x, (self.eyes_y + self.mouth_y) / 2 + 0.1 * self.d)

    def face_core(self) -> np.ndarray:
        return _soft(_ellipse(self.shape, self.face_centre, (1.0 * self.d, 1.15 * self.d)), 1.25, 0.5)

    def skin_core(self) -> np.ndarray:
        """The face core without the eyes (and a pair of glasses' frames) and the mouth: skin on every face."""
        eye = lambda x, y: _ellipse(self.shape, (x, y), (0.45 * self.d, 0.3 * self.d))  # noqa: E731
        eyes = np.minimum(eye(self.eyes_x - self.d / 2, self.eyes_y), eye(self.eyes_x + self.d / 2, self.eyes_y))
        mouth = _ellipse(self.shape, (self.eyes_x, self.mouth_y), (0.6 * self.d, 0.35 * self.d))
        return self.face_core() * (1 - _soft(eyes, 1.0, 0.5)) * (1 - _soft(mouth, 1.0, 0.5))

    def head(self) -> np.ndarray:
        """bool: round the face core, where every face has hair, forehead or ears: GrabCut's sure foreground,
        so that it learns the hair's colour even where the background has the same."""
        centre = (self.face_centre[0], self.face_centre[1] - 0.2 * self.d)
        return _ellipse(self.shape, centre, (1.1 * self.d, 1.5 * self.d)) < 1

    def around_head(self) -> np.ndarray:
        """Soft: 1 round the head, where hair almost always is, 0 beyond."""
        return _soft(_ellipse(self.shape, (self.eyes_x, self.eyes_y - 0.1 * self.d), (1.3 * self.d, 1.7 * self.d)),
                     1.0, 0.3)

    def near_face(self) -> np.ndarray:
        """Soft: the forehead, ears and neck round the face core, where skin is protected from a hair colour."""
        centre = (self.face_centre[0], self.face_centre[1] - 0.15 * self.d)
        return _soft(_ellipse(self.shape, centre, (1.35 * self.d, 1.7 * self.d)), 1.0, 0.3)

    def head_and_shoulders(self) -> np.ndarray:
        """bool: where a person's head, hair and shoulders usually are in the template's framing."""
        yy, xx = np.mgrid[0: self.shape[0], 0: self.shape[1]].astype(np.float32) + 0.5
        head = _ellipse(self.shape, (self.eyes_x, self.eyes_y - 0.1 * self.d), (1.5 * self.d, 1.9 * self.d)) < 1
        body = (yy > self.mouth_y + 0.6 * self.d) & (np.abs(xx - self.eyes_x) < 1.6 * self.d)
        return head | body

    def cheeks(self) -> np.ndarray:
        """bool: skin below the eyes and beside the nose, on every face."""
        centre = (self.eyes_x, (self.nose[1] + self.mouth_y) / 2 - 0.1 * self.d)
        band = _ellipse(self.shape, centre, (0.7 * self.d, 0.35 * self.d)) < 1
        return band & ~(_ellipse(self.shape, self.nose, (0.2 * self.d, 0.3 * self.d)) < 1)


def face_core(template: Sequence[Sequence[float]] | np.ndarray, size: int) -> np.ndarray:
    """float32 (size, size): 1 over the face core of a face aligned to ``template`` (brows to chin, cheek to
    cheek), falling softly to 0 round it. The same for every aligned face, so training uses it as it is."""
    return _Geometry(template, size).face_core()


def skin_core(template: Sequence[Sequence[float]] | np.ndarray, size: int) -> np.ndarray:
    """float32 (size, size): the face core less the eyes and the mouth, where an attribute's colour change should
    be smooth (cheeks, nose, chin, between the brows). The same for every aligned face."""
    return _Geometry(template, size).skin_core()


def _person(face: np.ndarray, geometry: _Geometry) -> np.ndarray:
    prior = geometry.head_and_shoulders()
    mask = np.where(prior, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    mask[geometry.head()] = cv2.GC_FGD
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)  # GrabCut's k-means start: the same face gives the same regions
    cv2.grabCut(face, mask, None, background, foreground, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    person = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    if person.mean() > PERSON_MAX_SHARE:
        person = prior
    person = cv2.GaussianBlur(person.astype(np.float32), (0, 0), face.shape[0] / 64)
    return np.maximum(person, geometry.around_head())


def _skin(face: np.ndarray, geometry: _Geometry) -> np.ndarray:
    ycc = cv2.cvtColor(face, cv2.COLOR_RGB2YCrCb).astype(np.float64)
    samples = ycc[geometry.cheeks()]
    inverse = np.linalg.inv(np.cov(samples.T) + np.diag(SKIN_SIGMA2))
    diff = ycc - samples.mean(0)
    distance2 = np.einsum("hwi,ij,hwj->hw", diff, inverse, diff)
    near, far = SKIN_DISTANCE
    return np.clip((far - distance2) / (far - near), 0.0, 1.0).astype(np.float32)


def face_regions(face: np.ndarray, template: Sequence[Sequence[float]] | np.ndarray,
                 size: int | None = None) -> np.ndarray:
    """The regions (``REGIONS``, float32 (2, size, size) in [0, 1]) of one face aligned to ``template``:
    uint8 RGB (H, W, 3), any square size (brought to ``REGION_SIZE``); ``size``: the output's (default
    REGION_SIZE)."""
    face = np.ascontiguousarray(face, dtype=np.uint8)
    if face.ndim != 3 or face.shape[2] != 3 or face.shape[0] != face.shape[1]:
        raise ValueError(f"face must be a square RGB image (S, S, 3), got {face.shape}")
    if face.shape[0] != REGION_SIZE:
        interpolation = cv2.INTER_AREA if face.shape[0] > REGION_SIZE else cv2.INTER_LINEAR
        face = cv2.resize(face, (REGION_SIZE, REGION_SIZE), interpolation=interpolation)
    geometry = _Geometry(template, REGION_SIZE)
    core = geometry.face_core()
    person = _person(face, geometry)
    skin_near_face = _skin(face, geometry) * geometry.near_face()
    hair = person * (1.0 - core) * (1.0 - skin_near_face)
    regions = np.stack([person, hair])
    size = size or REGION_SIZE
    if size != REGION_SIZE:
        regions = np.stack([cv2.resize(r, (size, size), interpolation=cv2.INTER_AREA) for r in regions])
    return regions.astype(np.float32)


def region_for(names: Iterable[str]) -> int:
    """The channel of ``REGIONS`` that an edit changing ``names`` may touch: the hair when it changes hair
    colours only, else the person."""
    names = set(names)
    return REGIONS.index("hair") if names and names <= set(HAIR_COLOURS) else REGIONS.index("person")


def keep_in_region(step: torch.Tensor, regions: torch.Tensor, changed: Sequence[Iterable[str]]) -> torch.Tensor:
    """G's change (B, 3, S, S) kept to each face's region for the names that face's edit changes."""
    if regions.shape[0] != step.shape[0]:
        raise ValueError(f"regions for {regions.shape[0]} faces, a change for {step.shape[0]}")
    if regions.shape[-2:] != step.shape[-2:]:
        regions = F.interpolate(regions, size=step.shape[-2:], mode="area")
    index = torch.tensor([region_for(names) for names in changed], dtype=torch.long)
    mask = regions[torch.arange(len(index)), index].unsqueeze(1).to(step)
    return step * mask
