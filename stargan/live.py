"""A face followed over the frames of a webcam stream or a video, so that each frame can be edited like a photo.

Preparing a photo runs the face detector (MTCNN), reads the face's labels with D_cls and finds its edit regions
(GrabCut): far too slow for every frame of a video on two cores. :class:`FaceTracker` does that work only on
some frames (a *re-detection*) and follows the face cheaply in between:

* each frame is shrunk to ``track_side`` px, in gray, and the face's core as it looked at the last detection
  (eyes, nose, mouth) is found again near where it was (OpenCV's normalised cross-correlation, to a fraction of
  a pixel); the detected landmarks move by that shift;
* the face is detected again every ``redetect_every`` frames, when it has moved more than ``max_move`` of its
  width since the last detection (it may also have turned or come closer, which a shift does not follow), and
  when the match is poor (``min_match``: the face turned away, something covers it);
* the landmarks are smoothed over frames: a move of less than ``smooth_px`` photo pixels is followed partly
  (detections differ by a pixel or two from frame to frame, and the pasted edit would shake with them), a larger
  one at once (a moving head is not trailed);
* a re-detection looks first round the followed face (a square twice its width, shrunk so the face is about
  120 px wide: ~3x cheaper than the whole frame), and in the whole frame only when the face is not there;
* the face's labels are read at each re-detection only (averaged with the last reading), and its edit regions
  (GrabCut, the slowest part) found when a face is first followed and again every ``regions_every``
  detections: both belong to the aligned face, which the tracker keeps in the same framing.

One face is followed, the largest at the start (then the one nearest where it was). A frame where no face is
found comes back unedited, with a note saying so. The demo's live mode and ``python -m stargan.translate
clip.mp4`` both use it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .domains import RELATED_BY_DEFAULT
from .face import DEFAULT_UPSAMPLE, Face, FaceDetector, Upsample, align, face_view
from .inference import Editor, Mode, PreparedFace, PreparedPhoto, to_tensor

NO_FACE_NOTE = "No face in view: showing the camera's picture as it is."


@dataclass
class LiveFrame:
    """One frame after :meth:`FaceTracker.edit`."""

    image: np.ndarray  # (H, W, 3) uint8 RGB: the edited frame, or the frame as it came when no face was found
    face: bool  # a face was found (and edited when settings asked for a change)
    redetected: bool  # the detector ran on this frame
    note: str  # "" or a short sentence for the page
    seconds: float


@dataclass
class _Track:
    landmarks: np.ndarray  # (5, 2) frame pixels, at the last detection
    patch: np.ndarray  # the face's core at the last detection, gray, at the tracking scale
    origin: np.ndarray  # (x, y) of the patch's top-left corner in the small frame at that detection
    shift: np.ndarray  # (x, y) the patch's move since then, small-frame pixels
    width: float  # the face's box width, frame pixels
    age: int  # frames since the last detection
    source: torch.Tensor | None  # D_cls's reading (d_dim,), averaged over detections
    regions: torch.Tensor | None  # edit regions (2, S, S), found at a track's first edit, again every few detections
    smoothed: np.ndarray  # (5, 2) the landmarks the frame is aligned with


class FaceTracker:
    """Follows one face over consecutive frames of one stream; one tracker per stream (it is not thread-safe)."""

    def __init__(self, editor: Editor, redetect_every: int = 15, max_move: float = 0.3, min_match: float = 0.6,
                 smooth_px: float = 3.0, track_side: int = 320, regions_every: int = 4) -> None:
        self.editor = editor
        self.redetect_every = redetect_every
        self.regions_every = regions_every
        self.max_move = max_move
        self.min_match = min_match
        self.smooth_px = smooth_px
        self.track_side = track_side
        self._track: _Track | None = None
        self._roi_detector = FaceDetector(str(editor.device), max_side=240, min_face_size=40)
        self.frames = 0
        self.detections = 0

    # ---- following -------------------------------------------------------------------------------------
    def _small(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        h, w = frame.shape[:2]
        k = min(1.0, self.track_side / max(h, w))
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if k < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        return gray, k

    def _follow(self, small: np.ndarray, k: float) -> np.ndarray | None:
        """The face's landmarks in this frame by the core's shift since the detection; None to re-detect."""
        t = self._track
        if t is None or t.age + 1 >= self.redetect_every:
            return None
        ph, pw = t.patch.shape
        margin = max(6, round(0.4 * pw))
        x0, y0 = np.round(t.origin + t.shift).astype(int) - margin
        x0, y0 = max(0, x0), max(0, y0)
        x1 = min(small.shape[1], x0 + pw + 2 * margin)
        y1 = min(small.shape[0], y0 + ph + 2 * margin)
        if x1 - x0 < pw + 2 or y1 - y0 < ph + 2:  # at the frame's edge
            return None
        scores = cv2.matchTemplate(small[y0:y1, x0:x1], t.patch, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        if not best >= self.min_match:  # also NaN: a patch without texture
            return None
        peak = np.array([bx + _vertex(scores[by, bx - 1: bx + 2]) if 0 < bx < scores.shape[1] - 1 else bx,
                         by + _vertex(scores[by - 1: by + 2, bx]) if 0 < by < scores.shape[0] - 1 else by], float)
        shift = np.array([x0, y0], float) + peak - t.origin
        if np.hypot(*shift) / k > self.max_move * t.width:
            return None
        t.shift = shift
        t.age += 1
        return t.landmarks + shift / k

    def _near(self, frame: np.ndarray) -> list[Face]:
        """Faces in the square round the followed one (twice its width), found at a scale where it is ~120 px
        wide: a fraction of a whole-frame detection's cost."""
        t = self._track
        assert t is not None
        cx, cy = t.smoothed.mean(0)
        r = 1.0 * t.width
        h, w = frame.shape[:2]
        x0, y0 = max(0, round(cx - r)), max(0, round(cy - 1.1 * r))
        x1, y1 = min(w, round(cx + r)), min(h, round(cy + 0.9 * r))
        if x1 - x0 < 24 or y1 - y0 < 24:
            return []
        faces = self._roi_detector.detect(frame[y0:y1, x0:x1])
        for f in faces:
            f.landmarks = f.landmarks + [x0, y0]
            f.box = (f.box[0] + x0, f.box[1] + y0, f.box[2] + x0, f.box[3] + y0)
        return faces

    def _detect(self, frame: np.ndarray, small: np.ndarray, k: float) -> Face | None:
        self.detections += 1
        faces = self._near(frame) if self._track is not None else []
        if not faces:
            faces = self.editor.detector.detect(frame)
        if not faces:
            return None
        face = faces[0]
        if self._track is not None:  # the same person: the face nearest where the tracked one is
            at = self._track.smoothed.mean(0)
            face = min(faces, key=lambda f: float(np.hypot(*(f.landmarks.mean(0) - at))))
        lm = face.landmarks
        eye = float(np.hypot(*(lm[1] - lm[0])))
        lo = (lm.min(0) - 0.45 * eye) * k  # eyes to mouth and a little round them: the face, not the background
        hi = (lm.max(0) + 0.45 * eye) * k
        x0, y0 = np.maximum(np.floor(lo), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(hi), [small.shape[1], small.shape[0]]).astype(int)
        patch = small[y0:y1, x0:x1].copy()
        old = self._track
        if old is None or min(patch.shape) < 8:
            smoothed = lm.copy()
        else:
            smoothed = old.smoothed
        keep = old is not None and self.detections % self.regions_every != 0  # else found again at this edit
        self._track = _Track(lm.copy(), patch, np.array([x0, y0], float), np.zeros(2), face.box[2] - face.box[0],
                             0, old.source if old is not None else None, old.regions if keep else None, smoothed)
        if min(patch.shape) < 8:  # too small to follow: detect on every frame
            self._track.age = self.redetect_every
        return face

    def _smooth(self, measured: np.ndarray) -> np.ndarray:
        t = self._track
        assert t is not None
        move = float(np.hypot(*(measured - t.smoothed).T).mean())
        alpha = min(1.0, max(0.25, move / self.smooth_px))
        t.smoothed = t.smoothed + alpha * (measured - t.smoothed)
        return t.smoothed

    # ---- a frame ---------------------------------------------------------------------------------------
    def prepare(self, frame: np.ndarray) -> tuple[PreparedPhoto | None, bool]:
        """The frame with its face aligned, as Editor.prepare makes a photo, and whether the detector ran.
        (None, ...) when there is no face. ``frame``: (H, W, 3) uint8 RGB."""
        editor = self.editor
        frame = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
        self.frames += 1
        small, k = self._small(frame)
        measured = self._follow(small, k)
        redetected = measured is None
        if redetected:
            if self._detect(frame, small, k) is None:
                self._track = None
                return None, True
            measured = self._track.landmarks  # type: ignore[union-attr]
        landmarks = self._smooth(measured)
        aligned = align(frame, landmarks, editor.template, editor.image_size, border="soft")
        tensor = to_tensor(aligned.image)[0]
        t = self._track
        assert t is not None
        if redetected:  # labels once per detection, averaged with the last reading against its noise
            reading = editor.read_labels(tensor[None])[0]
            t.source = reading if t.source is None else (t.source + reading) / 2
        box = (*landmarks.min(0), *landmarks.max(0))  # the landmarks' extent: what is left of the detected box
        face = PreparedFace(0, Face(box, 1.0, landmarks),  # type: ignore[arg-type]
                            aligned.image, face_view(frame, aligned.matrix, editor.image_size), aligned.matrix,
                            tensor, t.source, editor.labels_by_name(t.source), _regions=t.regions)
        return PreparedPhoto(frame, [face]), redetected

    def edit(self, frame: np.ndarray, settings: Mapping[str, float], mode: Mode = "delta", strength: float = 1.0,
             upsample: Upsample = DEFAULT_UPSAMPLE, related: bool = RELATED_BY_DEFAULT, regions: bool = True) -> LiveFrame:
        """Follow the face into ``frame`` and edit it as Editor.edit edits a photo's face."""
        t0 = time.perf_counter()
        prepared, redetected = self.prepare(frame)
        if prepared is None:
            return LiveFrame(np.ascontiguousarray(frame[..., :3]), False, redetected, NO_FACE_NOTE,
                             time.perf_counter() - t0)
        result = self.editor.edit(prepared, settings, mode=mode, strength=strength, upsample=upsample,
                                  related=related, regions=regions)
        if self._track is not None and prepared.faces[0]._regions is not None:
            self._track.regions = prepared.faces[0]._regions  # found at this detection's first edit: kept
        return LiveFrame(result.photo, True, redetected, "", time.perf_counter() - t0)

    @property
    def redetect_share(self) -> float:
        """Share of the frames seen so far on which the detector ran."""
        return self.detections / max(1, self.frames)


def _vertex(values: np.ndarray) -> float:
    """Sub-pixel offset (-0.5..0.5) of a peak from three samples round it (a parabola through them)."""
    a, b, c = (float(v) for v in values)
    den = a - 2 * b + c
    return 0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
