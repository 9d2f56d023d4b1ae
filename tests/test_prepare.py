"""stargan.prepare on tiny temporary copies of the shared datasets (STARGAN_DATA)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from stargan.face import FaceDetector, FaceError
from stargan.prepare import CELEBA_ATTR, CELEBA_SPLIT, main, prepare

from conftest import data_path as data_dir


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def _no_face(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    gradient = np.tile(np.linspace(0, 255, 200, dtype=np.uint8)[None, :, None], (150, 1, 3))
    cv2.imwrite(str(path), gradient)


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(src.read_bytes())


def test_expression_folders(tmp_path, detector):
    posed = data_dir("expressions_posed")
    src = tmp_path / "src"
    happy = sorted((posed / "train" / "happy").glob("*.jpg"))[:2]
    sad = sorted((posed / "test" / "sad").glob("*.jpg"))[:1]
    for p in happy:
        _copy(p, src / "train" / "happy" / p.name)
    _copy(sad[0], src / "test" / "sad" / sad[0].name)
    fer = min((data_dir("expressions") / "train" / "neutral").glob("*.jpg"))  # 48 px greyscale
    _copy(fer, src / "train" / "neutral" / fer.name)
    _no_face(src / "train" / "happy" / "blank.jpg")

    out = tmp_path / "out"
    result = prepare(src, out, "celeba_hq_128", 128, detector=detector)
    assert result.found == 4 and result.reused == 0
    assert [p for p, _ in result.skipped] == ["train/happy/blank.jpg"]
    assert (out / "skipped.txt").read_text().startswith("train/happy/blank.jpg\t")
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    expected = sorted(
        [f"train/happy/{p.name}" for p in happy] + [f"test/sad/{sad[0].name}", f"train/neutral/{fer.name}"]
    )
    assert written == expected
    for p in out.rglob("*.jpg"):
        assert cv2.imread(str(p)).shape == (128, 128, 3)
    info = json.loads((out / "prepare.json").read_text())
    assert info["aligned"] == 4 and info["skipped"] == 1 and info["size"] == 128

    # a second run reuses what is there (an interrupted run resumes)
    again = prepare(src, out, "celeba_hq_128", 128, detector=detector)
    assert again.reused == 4 and again.found == 0 and len(again.skipped) == 1


def test_celeba_format_labels_follow_the_images(tmp_path, detector):
    celeba = data_dir("celeba_hq_128")
    src = tmp_path / "celeba"
    names = ["0.jpg", "1.jpg", "2.jpg"]
    for name in names:
        _copy(celeba / "images" / name, src / "images" / name)
    _no_face(src / "images" / "blank.jpg")
    attr = (celeba / CELEBA_ATTR).read_text().splitlines()
    rows = {line.split()[0]: line for line in attr[2:]}
    blank_row = "blank.jpg " + " ".join(["-1"] * 40)
    lines = [str(len(names) + 1), attr[1], *(rows[n] for n in names), blank_row]
    (src / CELEBA_ATTR).write_text("\n".join(lines) + "\n")
    (src / CELEBA_SPLIT).write_text("".join(f"{n} 0\n" for n in names) + "blank.jpg 2\n")

    out = tmp_path / "out"
    result = prepare(src, out, "celeba_hq_128", 128, fmt="png", detector=detector)
    assert result.found == 3 and [p for p, _ in result.skipped] == ["images/blank.jpg"]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["0.png", "1.png", "2.png"]
    out_attr = (out / CELEBA_ATTR).read_text().splitlines()
    assert out_attr[0] == "3" and out_attr[1] == attr[1]
    assert out_attr[2:] == [rows[n].replace(".jpg", ".png", 1) for n in names]
    assert (out / CELEBA_SPLIT).read_text().split() == ["0.png", "0", "1.png", "0", "2.png", "0"]


def test_a_sample_takes_every_nth_image_of_each_folder_of_the_named_splits(tmp_path, detector):
    src = tmp_path / "src"
    for name in ("a", "b", "c", "d", "e"):
        _no_face(src / "test" / "happy" / f"{name}.jpg")
    for name in ("a", "b"):
        _no_face(src / "test" / "sad" / f"{name}.jpg")
        _no_face(src / "train" / "sad" / f"{name}.jpg")
    result = prepare(src, tmp_path / "out", detector=detector, splits=("test",), every=2)
    assert [p for p, _ in result.skipped] == ["test/happy/a.jpg", "test/happy/c.jpg", "test/happy/e.jpg",
                                              "test/sad/a.jpg"]
    with pytest.raises(FaceError, match="every"):
        prepare(src, tmp_path / "out", detector=detector, every=0)


def test_refuses_to_write_into_a_git_repo(tmp_path):
    src = data_dir("expressions_posed")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    with pytest.raises(FaceError, match="git"):
        prepare(src, repo / "data" / "prepared")
    with pytest.raises(FaceError, match="inside the source"):
        prepare(src, src / "prepared")


def test_cli_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "not a dataset" in capsys.readouterr().err
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "out"), "--template", "1,2"]) == 2
