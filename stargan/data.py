"""Datasets: CelebA in its own format, expression folders (RaFD layout), and the step-indexed batch sampler
that makes training resumable and identical across any number of DDP ranks.

Every problem with the data is found before training starts and reported with what, where and how to fix.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler
from torchvision import transforms

from .domains import CELEBA_ATTRIBUTES, RAFD_EXPRESSIONS, DatasetLabels

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class DataError(ValueError):
    """A dataset is missing, malformed or inconsistent; the message says where and how to fix it."""


def image_transform(image_size: int, crop_size: int | None = None) -> transforms.Compose:
    """The original's transforms minus the random flip (the trainer flips batches with its own seeded
    generator so that runs are reproducible): centre crop, resize, [-1, 1]."""
    steps: list = []
    if crop_size:
        steps.append(transforms.CenterCrop(crop_size))
    steps += [transforms.Resize(image_size, antialias=True), transforms.CenterCrop(image_size),
              transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    return transforms.Compose(steps)


def _load_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")  # grayscale becomes 3 equal channels


def _find_image_dir(root: Path) -> Path:
    for name in ("images", "img_align_celeba", "CelebA-HQ-img"):
        if (root / name).is_dir():
            return root / name
    raise DataError(f"{root}: no image folder found; expected one of images/, img_align_celeba/ or CelebA-HQ-img/ "
                    "beside list_attr_celeba.txt")


def read_celeba_attributes(path: Path) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """Parse ``list_attr_celeba.txt``: a count line, a names line, then ``filename`` and one 1/-1 per name."""
    if not path.is_file():
        raise DataError(f"attribute file not found: {path} (CelebA's list_attr_celeba.txt is required)")
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise DataError(f"{path}: expected a count line and a names line, the file has {len(lines)} line(s)")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DataError(f"{path}:1: expected the number of images, got {lines[0][:60]!r}") from None
    names = lines[1].split()
    unknown = [n for n in names if n not in CELEBA_ATTRIBUTES]
    if unknown:
        raise DataError(f"{path}:2: unknown attribute name(s) {unknown}")
    rows = []
    for number, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != len(names) + 1:
            raise DataError(f"{path}:{number}: expected a file name and {len(names)} values, got {len(parts)} fields")
        try:
            values = [int(v) for v in parts[1:]]
        except ValueError:
            raise DataError(f"{path}:{number}: attribute values must be 1 or -1, got {parts[1:6]}...") from None
        if any(v not in (1, -1) for v in values):
            raise DataError(f"{path}:{number}: attribute values must be 1 or -1, got {sorted(set(values))}")
        rows.append((parts[0], values))
    if len(rows) != count:
        raise DataError(f"{path}: the first line says {count} images but {len(rows)} rows follow")
    return names, rows


def _held_out(name: str, test_size: int, total: int) -> bool:
    # Deterministic, order-independent split when no partition file exists.
    return int(hashlib.md5(name.encode()).hexdigest()[:8], 16) % max(total, 1) < test_size


class CelebADataset(Dataset):
    """A CelebA-format folder: images + ``list_attr_celeba.txt`` (+ ``list_eval_partition.txt`` if present).

    Items are ``(image in [-1, 1], attribute values in {0, 1} for the requested names)``.
    """

    def __init__(self, root: str | Path, labels: DatasetLabels, split: str = "train", image_size: int = 128,
                 crop_size: int | None = None, test_size: int = 2000) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"CelebA folder not found: {root}")
        self.image_dir = _find_image_dir(root)
        names, rows = read_celeba_attributes(root / "list_attr_celeba.txt")
        missing_names = [a for a in labels.names if a not in names]
        if missing_names:
            raise DataError(f"{root / 'list_attr_celeba.txt'} has no column for {missing_names}; it has {names}")
        columns = [names.index(a) for a in labels.names]
        partition = root / "list_eval_partition.txt"
        if partition.is_file():
            part = {}
            for number, line in enumerate(partition.read_text().splitlines(), start=1):
                fields = line.split()
                if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                    raise DataError(f"{partition}:{number}: expected 'filename 0|1|2', got {line[:60]!r}")
                part[fields[0]] = fields[1]
            wanted = {"train": ("0",), "test": ("2",), "val": ("1",)}[split]
            keep = [r for r in rows if part.get(r[0]) in wanted]
        else:
            if test_size >= len(rows):
                raise DataError(f"{root}: no list_eval_partition.txt, and the held-out size {test_size} is not smaller "
                                f"than the {len(rows)} images; give a smaller --celeba-test-size")
            test = split != "train"
            keep = [r for r in rows if _held_out(r[0], test_size, len(rows)) == test]
        if not keep:
            raise DataError(f"{root}: the {split!r} split is empty")
        missing = [name for name, _ in keep if not (self.image_dir / name).is_file()]
        if missing:
            raise DataError(f"{len(missing)} image(s) listed in list_attr_celeba.txt are missing from {self.image_dir}, "
                            f"e.g. {missing[:3]}; restore them or remove their rows")
        self.files = [name for name, _ in keep]
        self.values = torch.tensor([[1.0 if v[c] == 1 else 0.0 for c in columns] for _, v in keep])
        self.transform = image_transform(image_size, crop_size)
        log.info("CelebA %s: %d images, %d attributes from %s", split, len(self.files), len(columns), root)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(_load_rgb(self.image_dir / self.files[i])), self.values[i]


class ExpressionDataset(Dataset):
    """One or more expression folders in RaFD layout (``<root>/<expression>/*.jpg``), merged.

    Class indices follow the label space's names, never the folders' alphabetical order; classes may be
    missing from a folder. Items are ``(image in [-1, 1], one-hot values)``; grayscale photos load as three
    equal channels.
    """

    def __init__(self, roots: Sequence[str | Path], labels: DatasetLabels, image_size: int = 128) -> None:
        if not roots:
            raise DataError("no expression folder given")
        self.files: list[Path] = []
        targets: list[int] = []
        for root in map(Path, roots):
            if not root.is_dir():
                raise DataError(f"expression folder not found: {root}")
            folders = sorted(p for p in root.iterdir() if p.is_dir())
            unknown = [p.name for p in folders if p.name not in labels.names]
            if unknown:
                raise DataError(f"{root}: unknown expression folder(s) {unknown}; folder names must be expression "
                                f"names of the model ({', '.join(labels.names)}; RaFD's are "
                                f"{', '.join(RAFD_EXPRESSIONS)})")
            count = 0
            for folder in folders:
                for f in sorted(folder.iterdir()):
                    if f.suffix.lower() in IMAGE_SUFFIXES:
                        self.files.append(f)
                        targets.append(labels.index(folder.name))
                        count += 1
            if count == 0:
                raise DataError(f"{root}: no images found in any expression folder (expected "
                                f"{root}/<expression>/*.jpg with names from {', '.join(labels.names)})")
            log.info("expressions: %d images from %s", count, root)
        self.targets = torch.tensor(targets)
        self.values = torch.nn.functional.one_hot(self.targets, len(labels)).float()
        self.transform = image_transform(image_size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(_load_rgb(self.files[i])), self.values[i]


def global_batch_indices(n: int, global_batch: int, step: int, seed: int) -> list[int]:
    """Dataset indices of the global batch at ``step``: epochs of seeded permutations, read in order.

    A pure function of the step, so a resumed run reads exactly the batches it would have read, and every
    rank agrees on the global batch without communicating.
    """
    out: list[int] = []
    pos = step * global_batch
    while len(out) < global_batch:
        epoch, offset = divmod(pos, n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919 * epoch)).tolist()
        take = perm[offset: offset + global_batch - len(out)]
        out += take
        pos += len(take)
    return out


class StepBatchSampler(Sampler[list[int]]):
    """Yields this rank's contiguous slice of every global batch from ``start_step`` to ``end_step``."""

    def __init__(self, n: int, global_batch: int, start_step: int, end_step: int, seed: int, rank: int = 0,
                 world_size: int = 1) -> None:
        if global_batch % world_size:
            raise ValueError(f"batch size {global_batch} must be divisible by the number of processes {world_size}")
        self.n, self.global_batch, self.seed = n, global_batch, seed
        self.start, self.end = start_step, end_step
        self.local = global_batch // world_size
        self.rank = rank

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.end):
            batch = global_batch_indices(self.n, self.global_batch, step, self.seed)
            yield batch[self.rank * self.local: (self.rank + 1) * self.local]
