"""stargan.regions: where an edit may change a face, on a drawn face with a known answer and on real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from stargan.domains import HAIR_COLOURS
from stargan.face import CELEBA_HQ_128_TEMPLATE, template_points
from stargan.inference import DEFAULT_WEIGHTS, Editor
from stargan.regions import REGION_SIZE, REGIONS, face_regions, keep_in_region, region_for

HAIR, PERSON = REGIONS.index("hair"), REGIONS.index("person")
SKIN, HAIR_RGB, BACKGROUND = (224, 172, 140), (60, 40, 25), (40, 90, 200)


def drawn_face() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A face drawn on the template: blue background, dark hair round the top and sides of the head, a skin oval
    with dark eyes and a red mouth, shoulders. Returns the image and bool masks of its parts."""
    size = REGION_SIZE
    left_eye, right_eye, nose, left_mouth, right_mouth = template_points(CELEBA_HQ_128_TEMPLATE, size).round()
    d = right_eye[0] - left_eye[0]
    cx, cy = int((left_eye[0] + right_eye[0]) / 2), int((left_eye[1] + left_mouth[1]) / 2 + 0.1 * d)
    parts = {k: np.zeros((size, size), np.uint8) for k in ("hair", "face", "body")}
    cv2.ellipse(parts["hair"], (cx, int(cy - 0.35 * d)), (int(1.3 * d), int(1.6 * d)), 0, 0, 360, 1, -1)
    cv2.ellipse(parts["face"], (cx, cy), (int(0.95 * d), int(1.25 * d)), 0, 0, 360, 1, -1)
    cv2.rectangle(parts["body"], (int(cx - 1.4 * d), int(cy + 1.4 * d)), (int(cx + 1.4 * d), size), 1, -1)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = BACKGROUND
    image[parts["body"] > 0] = (90, 90, 95)
    image[parts["hair"] > 0] = HAIR_RGB
    image[parts["face"] > 0] = SKIN
    for eye in (left_eye, right_eye):
        cv2.circle(image, (int(eye[0]), int(eye[1])), 3, (30, 30, 30), -1)
    cv2.line(image, (int(left_mouth[0]), int(left_mouth[1])), (int(right_mouth[0]), int(right_mouth[1])),
             (170, 60, 60), 2)
    rng = np.random.default_rng(0)  # a little texture, as in a photo
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    hair_only = (parts["hair"] > 0) & (parts["face"] == 0)
    background = (parts["hair"] == 0) & (parts["face"] == 0) & (parts["body"] == 0)
    far_background = cv2.erode(background.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    inner_hair = cv2.erode(hair_only.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    inner_face = cv2.erode((parts["face"] > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    return image, {"hair": inner_hair, "face": inner_face, "background": far_background}


def test_known_answer_hair_face_and_background():
    image, parts = drawn_face()
    regions = face_regions(image, CELEBA_HQ_128_TEMPLATE)
    assert regions.shape == (2, REGION_SIZE, REGION_SIZE) and regions.dtype == np.float32
    person, hair = regions[PERSON], regions[HAIR]
    assert person[parts["hair"]].mean() > 0.95 and person[parts["face"]].mean() > 0.95
    assert person[parts["background"]].mean() < 0.05
    assert hair[parts["hair"]].mean() > 0.9  # the hair takes a hair colour ...
    assert hair[parts["face"]].mean() < 0.05  # ... the skin does not ...
    assert hair[parts["background"]].mean() < 0.05  # ... nor the background


def test_regions_resize_to_the_model_and_repeat_exactly():
    image, _ = drawn_face()
    small = face_regions(image, CELEBA_HQ_128_TEMPLATE, size=64)
    assert small.shape == (2, 64, 64)
    np.testing.assert_array_equal(small, face_regions(image, CELEBA_HQ_128_TEMPLATE, size=64))
    with pytest.raises(ValueError, match="square RGB"):
        face_regions(image[:, :100], CELEBA_HQ_128_TEMPLATE)


def test_a_hair_colour_edit_stays_on_the_hair_any_other_on_the_person():
    assert region_for(["Gray_Hair"]) == HAIR
    assert region_for(HAIR_COLOURS) == HAIR  # setting one colour clears the others: still hair only
    assert region_for(["Gray_Hair", "Male"]) == PERSON
    assert region_for(["happy", "sad"]) == PERSON
    step = torch.ones(2, 3, 8, 8)
    regions = torch.zeros(2, 2, 16, 16)
    regions[:, PERSON, :8] = 1.0  # the top half is the person
    regions[:, HAIR, :4] = 1.0  # the top quarter is hair
    kept = keep_in_region(step, regions, [["Blond_Hair"], ["Male"]])
    assert kept[0, :, :2].min() == 1 and kept[0, :, 2:].max() == 0  # hair: the top quarter (regions resized)
    assert kept[1, :, :4].min() == 1 and kept[1, :, 4:].max() == 0  # person: the top half
    with pytest.raises(ValueError, match="regions for 2 faces"):
        keep_in_region(torch.ones(3, 3, 8, 8), regions, [["Male"]] * 3)


@pytest.fixture(scope="module")
def editor() -> Editor:
    if not (DEFAULT_WEIGHTS / "config.json").is_file():
        pytest.skip(f"the shipped model is not at {DEFAULT_WEIGHTS}")
    return Editor(DEFAULT_WEIGHTS, precision="fp32")


def test_gray_hair_leaves_the_face_as_it_was(editor):
    """The colour cast this module exists for: G's gray-hair change whitens the skin; kept to the hair region,
    the face core is untouched and the change elsewhere is G's own."""
    import skimage.data

    prepared = editor.prepare(skimage.data.astronaut())
    face = prepared.faces[0]
    x, source = face.tensor[None], face.source[None]
    anywhere = editor.change(x, {"Gray_Hair": 1.0}, source)
    kept = editor.change(x, {"Gray_Hair": 1.0}, source, regions=editor.regions_for(face)[None])
    hair = editor.regions_for(face)[HAIR]
    core = hair == 0
    assert anywhere.abs()[0][:, core].mean() > 0.02  # G does change the skin ...
    assert kept.abs()[0][:, core].max() < 1e-6  # ... and the region keeps it as it was
    assert (hair > 0.99).sum() > 100  # the hair is edited as G edits it, elsewhere in proportion
    inside = (x[0] + anywhere[0]).abs().amax(0) < 0.999  # where neither edit clips at the image range
    torch.testing.assert_close(kept[0][:, inside], (anywhere[0] * hair)[:, inside], atol=1e-5, rtol=0)
    # the photo edit keeps it too: the pasted face's centre is the photo's own pixels
    left_eye, right_eye, *_ = template_points(editor.template, face.view.shape[0])
    cx, cy = ((left_eye + right_eye) / 2).astype(int)
    r = int((right_eye[0] - left_eye[0]) / 4)
    result = editor.edit(prepared, {"Gray_Hair": 1.0})
    centre = (slice(cy, cy + 2 * r), slice(cx - r, cx + r))  # below the eyes, the nose and cheeks
    assert np.abs(result.after[0][centre].astype(int) - face.view[centre]).max() <= 2
    plain = editor.edit(prepared, {"Gray_Hair": 1.0}, regions=False)
    assert np.abs(plain.after[0][centre].astype(int) - face.view[centre]).mean() > 2


def test_real_faces_hair_above_the_forehead_not_on_the_cheeks(celeba_hq):
    """On held-out CelebA-HQ faces labelled black-haired (not bald, no hat): the hair region covers the top of
    the head and leaves the cheeks."""
    root = celeba_hq
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()
    names = lines[1].split()
    partition = dict(line.split() for line in (root / "list_eval_partition.txt").read_text().splitlines())
    chosen = []
    for line in lines[2:]:
        file, *values = line.split()
        row = dict(zip(names, (int(v) for v in values), strict=True))
        if partition.get(file) == "2" and row["Black_Hair"] == 1 and row["Bald"] == -1 and row["Wearing_Hat"] == -1:
            chosen.append(file)
        if len(chosen) == 40:
            break
    left_eye, right_eye, nose, left_mouth, _ = template_points(CELEBA_HQ_128_TEMPLATE, REGION_SIZE)
    d = right_eye[0] - left_eye[0]
    cx = int((left_eye[0] + right_eye[0]) / 2)
    top = (slice(int(left_eye[1] - 1.6 * d), int(left_eye[1] - 1.2 * d)), slice(cx - 4, cx + 4))
    cheeks = (slice(int(nose[1]) - 2, int(nose[1]) + 3), slice(int(left_eye[0]) - 3, int(left_eye[0]) + 3))
    hair_top, hair_cheek = [], []
    for file in chosen:
        image = np.asarray(Image.open(root / "images" / file).convert("RGB"))
        hair = face_regions(image, CELEBA_HQ_128_TEMPLATE)[HAIR]
        hair_top.append(hair[top].mean())
        hair_cheek.append(hair[cheeks].mean())
    assert len(chosen) == 40
    assert np.mean(hair_cheek) < 0.02, np.mean(hair_cheek)
    assert np.median(hair_top) > 0.8, np.median(hair_top)


def test_skin_core_keeps_cheeks_forehead_and_chin_not_eyes_or_mouth():
    """The colour-noise penalty's ``--colour-noise-where skin``: 1 on the cheeks, nose and chin, 0 on the
    eyes and the mouth (whose colours may change sharply: lips, teeth, glasses' frames) and off the face."""
    from stargan.regions import skin_core

    size = 64
    skin = skin_core(CELEBA_HQ_128_TEMPLATE, size)
    left_eye, right_eye, nose, left_mouth, right_mouth = template_points(CELEBA_HQ_128_TEMPLATE, size)
    d = float(np.linalg.norm(right_eye - left_eye))
    at = lambda x, y: float(skin[int(round(y)), int(round(x))])  # noqa: E731
    mouth = (left_mouth + right_mouth) / 2
    for point in (left_eye, right_eye, mouth):
        assert at(*point) == 0.0
    for x, y in ((left_eye[0], nose[1]), (right_eye[0], nose[1]), (nose[0], left_eye[1] - 0.35 * d),
                 (mouth[0], mouth[1] + 0.45 * d)):  # cheeks, between the brows, chin
        assert at(x, y) > 0.9, (x, y)
    assert skin[0].max() == 0.0 and skin[:, 0].max() == 0.0  # nothing at the crop's edges


def test_colour_noise_on_skin_ignores_the_mouth():
    from stargan.losses import colour_noise
    from stargan.regions import skin_core

    size = 64
    where = torch.from_numpy(skin_core(CELEBA_HQ_128_TEMPLATE, size)).view(1, 1, size, size)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    checker = (((yy + xx) % 2).float() * 2 - 1) * torch.tensor([0.1, 0.0, -0.1]).view(3, 1, 1)
    on_skin_area = (where > 0.99).float()
    off_skin_area = (where == 0).float()
    on_skin, off_skin = (checker * on_skin_area)[0:1], (checker * off_skin_area)[0:1]
    assert colour_noise(off_skin, where=where) < 0.1 * colour_noise(on_skin, where=where)
    assert colour_noise(off_skin) > colour_noise(on_skin)  # everywhere, the bigger area counts more
