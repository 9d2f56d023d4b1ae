"""gpu/pack_data.py: the WebP pack that travels to a lent GPU reads back as the same training data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stargan.data import CelebADataset, ExpressionDataset
from stargan.domains import CELEBA_ATTRIBUTES, celeba
from stargan.domains import expressions as expression_labels

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("pack_data", ROOT / "gpu" / "pack_data.py")
pack_data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pack_data)


def _face(path: Path, seed: int) -> None:
    # smooth colour blobs: compress like a photo, unlike noise
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(small).resize((128, 128), Image.BICUBIC).save(path, quality=90)


def _celeba(root: Path) -> None:
    rows, parts = [], []
    for i in range(6):
        name = f"{i}.jpg"
        _face(root / "images" / name, i)
        rows.append(" ".join([name] + ["1" if (i + j) % 3 == 0 else "-1" for j in range(len(CELEBA_ATTRIBUTES))]))
        parts.append(f"{name} {2 if i == 5 else 0}")
    (root / "list_attr_celeba.txt").write_text("\n".join(["6", " ".join(CELEBA_ATTRIBUTES), *rows]) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")


def test_pack_keeps_train_faces_labels_and_expressions(tmp_path):
    _celeba(tmp_path / "celeba")
    _face(tmp_path / "expr" / "happy" / "a.png", 10)
    _face(tmp_path / "expr" / "sad" / "b.jpg", 11)
    out = tmp_path / "pack"
    assert pack_data.main(["--out", str(out), "--celeba", str(tmp_path / "celeba"), "--max-celeba", "4",
                           "--expressions", str(tmp_path / "expr"), "--workers", "1"]) == 0

    labels = celeba(CELEBA_ATTRIBUTES)
    original = CelebADataset(tmp_path / "celeba", labels, "train", 128)
    packed = CelebADataset(out / "celeba", labels, "train", 128)
    # a seeded subset of the train split only (face 5 is a test face), labels carried row by row
    assert len(packed) == 4 and all(Path(f).suffix == ".webp" for f in packed.files)
    by_stem = {Path(f).stem: v for f, v in zip(original.files, original.values)}
    assert set(Path(f).stem for f in packed.files) <= set(by_stem)
    for f, v in zip(packed.files, packed.values):
        assert torch.equal(v, by_stem[Path(f).stem])
    # the re-encoded picture is close to the source (WebP quality 75)
    i = original.files.index(Path(packed.files[0]).with_suffix(".jpg").name)
    assert (packed[0][0] - original[i][0]).abs().mean() < 0.03

    expressions = ExpressionDataset([out / "expressions0"], expression_labels(), 128)
    assert len(expressions) == 2
    assert [expression_labels().names[t] for t in expressions.targets.tolist()] == ["happy", "sad"]


def test_pack_refuses_a_non_empty_folder(tmp_path):
    _celeba(tmp_path / "celeba")
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "old").write_text("x")
    with pytest.raises(SystemExit):
        pack_data.main(["--out", str(tmp_path / "pack"), "--celeba", str(tmp_path / "celeba")])
