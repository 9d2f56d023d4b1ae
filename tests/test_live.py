"""stargan.live.FaceTracker on real frames: clips made from a wild photo by moving a window over it; and the
video command (python -m stargan.translate clip.mp4) on such a clip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stargan import translate
from stargan.face import load_image
from stargan.inference import DEFAULT_WEIGHTS, Editor
from stargan.live import NO_FACE_NOTE, FaceTracker

from conftest import data_path

PHOTO = "deepface_img2.jpg"  # one face, near the middle, room round it


@pytest.fixture(scope="module")
def editor() -> Editor:
    if not (DEFAULT_WEIGHTS / "config.json").is_file():
        pytest.skip(f"the shipped model is not at {DEFAULT_WEIGHTS}")
    return Editor(DEFAULT_WEIGHTS, precision="fp32")


def moving_clip(path, size=(320, 240), n=12, amplitude=(20.0, 10.0), period=12):
    """Frames of ``size`` cut from the photo (scaled to leave ``amplitude`` px of room) by a window moving on an
    ellipse; returns the scaled photo, the frames and each frame's window offset (x, y)."""
    photo = load_image(path)
    w, h = size
    s = max((w + 2 * amplitude[0] + 2) / photo.shape[1], (h + 2 * amplitude[1] + 2) / photo.shape[0])
    big = cv2.resize(photo, (round(photo.shape[1] * s), round(photo.shape[0] * s)), interpolation=cv2.INTER_AREA)
    centre = np.array([big.shape[1] - w, big.shape[0] - h]) / 2
    offsets = [centre + np.array(amplitude) * [np.sin(2 * np.pi * t / period), np.sin(4 * np.pi * t / period)]
               for t in range(n)]
    frames = [cv2.warpAffine(big, np.float32([[1, 0, -ox], [0, 1, -oy]]), (w, h), flags=cv2.INTER_LINEAR)
              for ox, oy in offsets]
    return big, frames, np.array(offsets)


def face_share(before: np.ndarray, after: np.ndarray, centre: np.ndarray, radius: float) -> tuple[float, float]:
    """Mean absolute change within ``radius`` px of ``centre`` and beyond it."""
    diff = np.abs(after.astype(np.float32) - before.astype(np.float32)).mean(2)
    yy, xx = np.mgrid[0: diff.shape[0], 0: diff.shape[1]]
    near = np.hypot(xx - centre[0], yy - centre[1]) < radius
    return float(diff[near].mean()), float(diff[~near].mean())


def test_tracker_follows_a_moving_face_with_few_detections(editor):
    big, frames, offsets = moving_clip(data_path("celeba_wild_sample", PHOTO), n=12, amplitude=(12.0, 6.0))
    truth = editor.detector.detect(big)[0].landmarks
    tracker = FaceTracker(editor, redetect_every=8)
    errors, detected = [], []
    for frame, offset in zip(frames, offsets, strict=True):
        prepared, redetected = tracker.prepare(frame)
        assert prepared is not None
        errors.append(float(np.hypot(*(prepared.faces[0].face.landmarks - (truth - offset)).T).mean()))
        detected.append(redetected)
    # the face moves up to ~6 px a frame; the detector ran on the first frame and a few more, not on every one
    assert detected[0] and sum(detected) <= 4, detected
    assert tracker.redetect_share == sum(detected) / len(frames)
    near = tracker._near(frames[-1])  # a re-detection looks round the followed face first, and finds it there
    assert len(near) == 1 and np.hypot(*(near[0].landmarks - (truth - offsets[-1])).T).mean() < 3.0
    # followed to within ~2 px (MTCNN's own spread between a frame and the whole photo is about 1 px)
    assert max(errors) < 2.5, errors


def test_smoothing_steadies_the_alignment(editor):
    """The same picture in every frame, re-encoded at different JPEG qualities: the detector's landmarks jump by
    a pixel or so from frame to frame; the tracker's, aligned from smoothed landmarks, move less."""
    _, frames, _ = moving_clip(data_path("celeba_wild_sample", PHOTO), n=1)
    noisy = [cv2.imdecode(cv2.imencode(".jpg", frames[0], [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_UNCHANGED)
             for q in (95, 60, 85, 50, 90, 55, 80, 45)]
    raw = np.stack([editor.detector.detect(f)[0].landmarks for f in noisy])
    tracker = FaceTracker(editor, redetect_every=1)  # detect on every frame: only the smoothing is left
    smoothed = np.stack([tracker.prepare(f)[0].faces[0].face.landmarks for f in noisy])
    assert tracker.redetect_share == 1.0
    raw_jitter = np.abs(np.diff(raw, axis=0)).mean()
    smoothed_jitter = np.abs(np.diff(smoothed, axis=0)).mean()
    assert raw_jitter > 0.1  # the test means something: the detections do move
    assert smoothed_jitter < 0.6 * raw_jitter, (raw_jitter, smoothed_jitter)


def test_edit_changes_the_face_and_a_frame_without_one_comes_back_as_it_was(editor):
    big, frames, offsets = moving_clip(data_path("celeba_wild_sample", PHOTO), n=4)
    truth = editor.detector.detect(big)[0].landmarks
    eye = float(np.hypot(*(truth[1] - truth[0])))
    tracker = FaceTracker(editor)
    empty = np.full_like(frames[0], 128)
    empty[::8] = 90  # stripes: a picture, not a face
    for i, (frame, offset) in enumerate(zip([frames[0], frames[1], empty, frames[2], frames[3]],
                                            [offsets[0], offsets[1], None, offsets[2], offsets[3]], strict=True)):
        shown = tracker.edit(frame, {"Blond_Hair": 1.0})
        assert shown.image.shape == frame.shape and shown.image.dtype == np.uint8
        if offset is None:
            assert not shown.face and shown.note == NO_FACE_NOTE
            assert np.array_equal(shown.image, frame)
            continue
        assert shown.face and shown.note == ""
        near, far = face_share(frame, shown.image, truth.mean(0) - offset, 2.5 * eye)
        assert near > 2.0 and near > 8 * far, (i, near, far)
    # no face for a frame: the face is found afresh after it
    assert tracker.detections >= 2
    # a stream's first frame is edited exactly as the same picture uploaded as a photo, with every option
    options = {"strength": 1.5, "related": False, "regions": True}
    as_photo = editor.edit(editor.prepare(frames[0]), {"Blond_Hair": 1.0, "Smiling": 1.0}, **options).photo
    live = FaceTracker(editor).edit(frames[0], {"Blond_Hair": 1.0, "Smiling": 1.0}, **options).image
    assert np.abs(live.astype(int) - as_photo).max() <= 2


def test_video_command_edits_every_frame(editor, tmp_path, capsys):
    _, frames, offsets = moving_clip(data_path("celeba_wild_sample", PHOTO), n=6)
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    out = tmp_path / "edited.mp4"
    assert translate.main([str(clip), "--set", "Blond_Hair=1", "--precision", "fp32", "--out", str(out)]) == 0
    assert "6 frames, a face in 6" in capsys.readouterr().out
    source, edited = cv2.VideoCapture(str(clip)), cv2.VideoCapture(str(out))
    assert edited.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    changes = []
    while True:
        ok_a, a = source.read()
        ok_b, b = edited.read()
        assert ok_a == ok_b
        if not ok_a:
            break
        assert a.shape == b.shape
        changes.append(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())
    assert len(changes) == 6 and min(changes) > 1.0, changes
    # a name the model does not know fails before any frame is written; so does a photo-only option
    assert translate.main([str(clip), "--set", "Purple_Hair=1", "--out", str(tmp_path / "x.mp4")]) == 1
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(SystemExit):
        translate.main([str(clip), "--read"])
