"""Face pipeline on real photos: skimage's astronaut (public domain) and ../shared/data (STARGAN_DATA)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from stargan.face import (
    CELEBA_ALIGNED_TEMPLATE,
    CELEBA_HQ_128_TEMPLATE,
    DEFAULT_UPSAMPLE,
    UPSAMPLES,
    Face,
    FaceDetector,
    FaceError,
    align,
    crop_mask,
    face_view,
    load_image,
    main,
    measure_template,
    parse_template,
    paste_back,
    paste_delta,
    similarity_transform,
    template_points,
    transform_points,
)

from conftest import data_path as data_dir
from conftest import png_header


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def astronaut_face(detector, astronaut) -> Face:
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    return faces[0]


def wild_images(every: int) -> list[Path]:
    return sorted(data_dir("celeba_wild_sample").glob("*.jpg"))[::every]


# ------------------------------------------------------------------------------------------- detection
def test_astronaut_face_and_landmarks(astronaut_face):
    face = astronaut_face
    assert face.score > 0.99
    x0, y0, x1, y1 = face.box
    lm = face.landmarks
    assert lm.shape == (5, 2)
    assert np.all((lm[:, 0] > x0) & (lm[:, 0] < x1) & (lm[:, 1] > y0) & (lm[:, 1] < y1))
    # order: left eye, right eye (image left/right), nose below the eyes, mouth below the nose
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
    assert lm[:2, 1].max() < lm[2, 1] < lm[3:, 1].min()


def test_wild_detection_rate(detector):
    # every 4th photo (26 of 103) keeps this test short; benchmarks/face_speed.py runs all of them
    paths = wild_images(4)
    found = sum(bool(detector.detect(load_image(p))) for p in paths)
    rate = found / len(paths)
    print(f"wild detection rate: {found}/{len(paths)} = {rate:.1%}")
    assert rate >= 0.95


def test_several_faces_largest_first(detector):
    image = load_image(data_dir("celeba_wild_sample") / "linzaer_MNN_imgs_1.jpg")
    faces = detector.detect(image)
    assert len(faces) >= 3
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    # each face aligns on its own
    crops = [align(image, f).image for f in faces[:3]]
    assert all(c.shape == (128, 128, 3) for c in crops)


def test_large_photo_is_detected_on_a_downscaled_copy(detector, astronaut, astronaut_face):
    big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    faces = detector.detect(big)
    assert len(faces) == 1
    # landmarks come back in the big photo's pixels: 4x the small photo's, within MTCNN's noise
    err = np.abs(faces[0].landmarks - (astronaut_face.landmarks + 0.5) * 4 + 0.5)
    assert err.max() < 12


# ------------------------------------------------------------------------------------------- alignment
def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, t = np.deg2rad(25), 0.37, np.array([12.0, -7.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)
    # a mirrored point set gets the best rotation, never a reflection
    m2 = similarity_transform(src, src * [-1, 1])
    assert np.linalg.det(m2[:, :2]) > 0


def test_redetection_on_aligned_crop(detector, astronaut):
    """The transform puts the landmarks where MTCNN finds them again in the 128 px crop."""
    images = [astronaut] + [load_image(p) for p in wild_images(10)]
    template = template_points(CELEBA_HQ_128_TEMPLATE, 128)
    errors, eye_errors = [], []
    for image in images:
        faces = detector.detect(image)
        assert faces
        aligned = align(image, faces[0], CELEBA_HQ_128_TEMPLATE, 128)
        again = detector.detect(aligned.image)
        assert again, "no face found again in the aligned crop"
        expected = transform_points(faces[0].landmarks, aligned.matrix)
        errors.append(np.linalg.norm(again[0].landmarks - expected, axis=1).mean())
        eye_errors.append(np.linalg.norm(again[0].landmarks[:2] - template[:2], axis=1).max())
    print(f"re-detection mean landmark error {np.mean(errors):.2f} px (per image {np.round(errors, 2)}); "
          f"eye centres vs template: median of per-image max {np.median(eye_errors):.2f} px")
    assert np.mean(errors) <= 2.0
    assert np.median(eye_errors) <= 3.0
    # the astronaut (a frontal face) individually
    assert eye_errors[0] <= 3.0


@pytest.mark.parametrize("angle", [20, -20])
def test_rotated_photo_gives_the_same_crop(detector, astronaut, astronaut_face, angle):
    """Measure: PSNR between the crops (a 1 px shift of a sharp face is already ~25 dB; without re-alignment
    the crops differ at ~9 dB) and how far the crop's corners move (composed transform vs identity)."""
    ref = align(astronaut, astronaut_face)
    h, w = astronaut.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    rotated = cv2.warpAffine(astronaut, rot, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    faces = detector.detect(rotated)
    assert len(faces) == 1
    got = align(rotated, faces[0])
    value = psnr(ref.image, got.image)
    # crop -> photo -> rotated photo -> new crop should be the identity
    inv_ref = cv2.invertAffineTransform(ref.matrix)
    chain = np.vstack([got.matrix, [0, 0, 1]]) @ np.vstack([rot, [0, 0, 1]]) @ np.vstack([inv_ref, [0, 0, 1]])
    points = template_points(CELEBA_HQ_128_TEMPLATE, 128)
    moved = np.linalg.norm(transform_points(points, chain[:2]) - points, axis=1)
    print(f"rotation {angle}: PSNR {value:.1f} dB, the template's face points move {moved.mean():.2f} px "
          f"on average (at most {moved.max():.2f})")
    assert value >= 20.0
    assert moved.mean() <= 2.0 and moved.max() <= 3.0


def test_soft_border_keeps_face_and_fades_the_mirror(detector):
    path = min((data_dir("expressions") / "train" / "happy").glob("*.jpg"))
    image = load_image(path)
    # FER crops are tight: the face fills the 48 px image, so the crop reaches well past the photo
    landmarks = (template_points(CELEBA_HQ_128_TEMPLATE, 48) - 24) * 1.8 + 24
    soft = align(image, landmarks, CELEBA_HQ_128_TEMPLATE, 128, border="soft").image
    mirror = align(image, landmarks, CELEBA_HQ_128_TEMPLATE, 128, border="reflect").image
    centre = slice(40, 88)
    np.testing.assert_array_equal(soft[centre, centre], mirror[centre, centre])
    # far from the photo the soft border is a blur: much less detail than the mirrored copy
    corner = (slice(0, 16), slice(0, 16))
    assert cv2.Laplacian(soft[corner], cv2.CV_64F).var() < cv2.Laplacian(mirror[corner], cv2.CV_64F).var()


def test_template_parsing():
    np.testing.assert_allclose(parse_template("celeba_aligned"), CELEBA_ALIGNED_TEMPLATE)
    values = ",".join(str(v) for p in CELEBA_HQ_128_TEMPLATE for v in p)
    np.testing.assert_allclose(parse_template(values), CELEBA_HQ_128_TEMPLATE)
    with pytest.raises(FaceError, match="template"):
        parse_template("1,2,3")


# ------------------------------------------------------------------------------------------ paste-back
def test_paste_back_unedited_is_imperceptible(astronaut, astronaut_face):
    """Two bilinear resamplings (photo -> crop -> photo) of a face at about its native resolution.

    40 dB whole-photo PSNR is well above the ~35 dB at which JPEG quality-90 artefacts are just visible;
    measured: about 41.8 dB.
    """
    aligned = align(astronaut, astronaut_face)
    out = paste_back(astronaut, aligned.image, aligned.matrix)
    value = psnr(astronaut, out)
    print(f"unedited paste-back PSNR {value:.2f} dB")
    assert value >= 40.0
    # paste_delta with no edit is exact
    np.testing.assert_array_equal(paste_delta(astronaut, np.zeros((128, 128, 3)), aligned.matrix), astronaut)


def _footprint_mask(matrix: np.ndarray, size: int, shape: tuple[int, ...]) -> np.ndarray:
    inv = cv2.invertAffineTransform(matrix)
    quad = transform_points(np.array([[0, 0], [size, 0], [size, size], [0, size]], float) - 0.5, inv)
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 1)
    return cv2.dilate(mask, np.ones((5, 5), np.uint8)).astype(bool)


@pytest.mark.parametrize("mode", ["crop", "delta"])
def test_edit_changes_only_the_face_region(astronaut, astronaut_face, mode):
    aligned = align(astronaut, astronaut_face)
    if mode == "crop":
        edited = np.clip(aligned.image.astype(int) - 40, 0, 255).astype(np.uint8)
        out = paste_back(astronaut, edited, aligned.matrix)
    else:
        out = paste_delta(astronaut, np.full((128, 128, 3), -40.0), aligned.matrix)
    changed = np.any(out != astronaut, axis=2)
    inside = _footprint_mask(aligned.matrix, 128, astronaut.shape)
    assert changed.any()
    assert not (changed & ~inside).any(), "pixels outside the face region changed"
    # the face centre (nose) gets the full edit; the mask fades to nothing at the crop's edge (no seam)
    nx, ny = np.round(astronaut_face.landmarks[2]).astype(int)
    assert np.all(astronaut[ny, nx].astype(int) - out[ny, nx] >= 35)
    mask = crop_mask(128)
    assert mask[64, 64] == 1.0 and mask[0].max() == 0.0 and mask[:, -1].max() == 0.0


# ----------------------------------------------------------------------------------------- template
def test_measure_template_on_celeba_hq(detector):
    paths = sorted((data_dir("celeba_hq_128") / "images").glob("*.jpg"))[::500]  # 20 images
    template, spread = measure_template(paths, 128, detector)
    print(f"template from {len(paths)} images: {np.round(template, 4).tolist()}, spread {spread.max():.3f}")
    assert np.abs(template - np.asarray(CELEBA_HQ_128_TEMPLATE)).max() <= 0.02
    assert spread.max() < 0.06
    # the images are already in this framing: aligning them is close to the identity on average
    matrices = []
    for path in paths[:8]:
        image = load_image(path)
        matrices.append(align(image, detector.detect(image)[0], template, 128).matrix)
    mean = np.mean(matrices, axis=0)
    np.testing.assert_allclose(mean[:, :2], np.eye(2), atol=0.05)
    assert np.abs(mean[:, 2]).max() <= 4.0


def test_measure_template_cli(tmp_path, capsys):
    src = data_dir("celeba_hq_128") / "images"
    for name in ("0.jpg", "1.jpg", "2.jpg"):
        (tmp_path / name).write_bytes((src / name).read_bytes())
    assert main(["measure-template", str(tmp_path), "--every", "1", "--size", "128"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 3
    assert np.abs(np.array(result["template"]) - np.asarray(CELEBA_HQ_128_TEMPLATE)).max() < 0.05


# ---------------------------------------------------------------------------------------- bad inputs
def test_no_face_and_tiny_images(detector):
    assert detector.detect(skimage.data.coffee()) == []  # a real photo without a face
    for shape in [(1, 1, 3), (5, 7, 3), (12, 12, 3), (3, 500, 3)]:
        assert detector.detect(np.full(shape, 128, np.uint8)) == []
    assert detector.detect(np.zeros((64, 64), np.uint8)) == []  # greyscale arrays are accepted


@pytest.mark.parametrize("size", [(10_000, 9_000), (100_000, 100_000)])
def test_huge_image_rejected(tmp_path, size):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(*size))
    with pytest.raises(FaceError, match="decompression"):
        load_image(path)
    with pytest.raises(FaceError, match="decompression"):
        load_image(path.read_bytes())


def test_non_image_rejected(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photo")
    with pytest.raises(FaceError, match="not an image"):
        load_image(path)
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(FaceError):
        load_image(np.zeros((4, 4, 2), np.uint8))


# ------------------------------------------------------------------------------------- image modes
def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_exif_orientation_is_honoured(astronaut):
    img = Image.fromarray(astronaut[:, :256])  # 512 tall, 256 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    loaded = load_image(_encode(img, "JPEG", exif=exif, quality=95))
    assert loaded.shape == (256, 512, 3)
    assert psnr(loaded, np.rot90(astronaut[:, :256], -1)) > 30  # upright (sideways would be ~10 dB)


def test_modes_are_converted(astronaut):
    rgb = Image.fromarray(astronaut)
    grey = rgb.convert("L")
    # RGBA: transparent pixels become white, opaque ones keep their colour
    rgba = rgb.convert("RGBA")
    alpha = np.full(astronaut.shape[:2], 255, np.uint8)
    alpha[:10] = 0
    rgba.putalpha(Image.fromarray(alpha))
    out = load_image(_encode(rgba, "PNG"))
    assert np.all(out[:10] == 255) and np.array_equal(out[10:], astronaut[10:])
    # greyscale: three equal channels
    out = load_image(_encode(grey, "PNG"))
    assert out.shape == (512, 512, 3) and np.array_equal(out[..., 0], np.asarray(grey))
    # 16-bit greyscale scales to 8 bits (not clipped to white)
    grey16 = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    out = load_image(_encode(grey16, "PNG"))
    assert np.abs(out[..., 0].astype(int) - np.asarray(grey)).max() <= 1
    # palette and CMYK come back close to the original colours
    out = load_image(_encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=256), "PNG"))
    assert psnr(out, astronaut) > 25
    out = load_image(_encode(rgb.convert("CMYK"), "JPEG", quality=95))
    assert psnr(out, astronaut) > 30
    # arrays: float in [0, 1] and uint16
    assert np.array_equal(load_image(astronaut.astype(np.float32) / 255.0), astronaut)
    assert np.array_equal(load_image(astronaut.astype(np.uint16) * 257), astronaut)
    assert isinstance(load_image(rgb), np.ndarray)


# ------------------------------------------------------------------------ upsampling G's change to the photo
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the known answer lives there
def _known_answer_errors(astronaut, astronaut_face) -> dict[str, tuple[float, float]]:
    from upsample_compare import known_errors

    aligned = align(astronaut, astronaut_face, size=64)
    return {m: known_errors(astronaut, aligned.matrix, 64, 0.25, upsample=m) for m in UPSAMPLES}


def test_known_answer_default_upsampling_is_the_better(astronaut, astronaut_face):
    """A crisp edit of the astronaut at full resolution (a colour change inside a sharp mask that follows the
    photo's own regions, plus a smooth change), brought to the model's 64 px and back by each method: the default
    must be at least as close to the true edit as the other (benchmarks/upsample_compare.py, HISTORY.md)."""
    errors = _known_answer_errors(astronaut, astronaut_face)
    print({m: tuple(round(v, 3) for v in e) for m, e in errors.items()})
    other = next(m for m in UPSAMPLES if m != DEFAULT_UPSAMPLE)
    assert errors[DEFAULT_UPSAMPLE][0] <= errors[other][0]
    assert all(0 < e[0] < 5 for e in errors.values())  # both near the truth: no method is broken


def test_guided_change_follows_the_photos_edges(astronaut, astronaut_face):
    """The guided option moves the change towards the photo's own edges (the gradient of the change correlates
    more with the photo's), and stays the same edit (close to bilinear on average)."""
    from upsample_compare import edge_correlation, known_edit

    aligned = align(astronaut, astronaut_face, size=64)
    _, small, footprint, _ = known_edit(astronaut, aligned.matrix, 64, 0.25)
    ones = np.ones((64, 64), np.float32)
    outs = {m: paste_delta(astronaut, small, aligned.matrix, mask=ones, upsample=m).astype(np.float32) - astronaut
            for m in UPSAMPLES}
    x0, y0, x1, y1 = (int(v) for v in astronaut_face.box)
    face = np.zeros(astronaut.shape[:2], bool)
    face[y0:y1, x0:x1] = True
    corr = {m: edge_correlation(astronaut, o, face) for m, o in outs.items()}
    print("edge correlation", corr)
    assert corr["guided"] > corr["bilinear"] + 0.05
    assert np.abs(outs["guided"] - outs["bilinear"])[face].mean() < 3  # the same edit, not another
    with pytest.raises(ValueError, match="upsample"):
        paste_delta(astronaut, small, aligned.matrix, upsample="nearest")


def test_face_view_is_at_the_photos_resolution(astronaut, astronaut_face):
    aligned = align(astronaut, astronaut_face, size=64)
    view = face_view(astronaut, aligned.matrix, 64)
    side = round(64 / np.sqrt(np.linalg.det(aligned.matrix[:, :2])))
    assert view.shape == (side, side, 3) and side > 2 * 64
    # the same framing: shrunk to 64 px it matches the model's crop
    small = cv2.resize(view, (64, 64), interpolation=cv2.INTER_AREA)
    assert psnr(small, aligned.image) > 28
    assert face_view(astronaut, aligned.matrix, 64, max_side=100).shape == (100, 100, 3)
