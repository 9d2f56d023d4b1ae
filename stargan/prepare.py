"""Bring a dataset to the model's framing: an aligned copy made with stargan.face (DESIGN decision 5).

    python -m stargan.prepare SRC --out DIR [--template celeba_hq_128|celeba_aligned|x1,y1,...] [--size 128]

SRC is either an expression folder root (`train/` and `test/` holding one folder per class) or a
CelebA-format folder (`images/`, `list_attr_celeba.txt`, `list_eval_partition.txt`). The copy keeps the
layout, class folders, split and labels; images where no face is found are listed in DIR/skipped.txt and
left out (their label rows too). Outputs already present are reused, so an interrupted run resumes.
``prepare(..., splits=("test",), every=8)`` aligns a sample instead: one split, every 8th image of each folder
(the source's class mix at an eighth of the cost; the tests prepare theirs this way).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from stargan.face import (
    IMAGE_SUFFIXES,
    TEMPLATES,
    FaceDetector,
    FaceError,
    align,
    load_image,
    parse_template,
)

logger = logging.getLogger(__name__)

CELEBA_ATTR = "list_attr_celeba.txt"
CELEBA_SPLIT = "list_eval_partition.txt"


@dataclass
class PrepareResult:
    found: int = 0
    reused: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    out: Path | None = None

    @property
    def total(self) -> int:
        return self.found + self.reused + len(self.skipped)


def _inside_git_repo(path: Path) -> Path | None:
    """The work tree that contains `path` (or would, once created), if any."""
    path = path.resolve()
    for parent in [path, *path.parents]:
        if (parent / ".git").exists():
            return parent
    return None


def detect_format(src: Path) -> str:
    """'celeba' or 'folders'; FaceError with what was expected otherwise."""
    if (src / "images").is_dir() and (src / CELEBA_ATTR).is_file():
        return "celeba"
    if any((src / split).is_dir() for split in ("train", "test")):
        return "folders"
    raise FaceError(
        f"{src}: not a dataset this command knows. Expected either a CelebA-format folder (images/ and "
        f"{CELEBA_ATTR}) or an expression folder root (train/ and test/ with one folder per class)"
    )


def _list_images(folder: Path, every: int = 1) -> list[Path]:
    """The images below ``folder`` in name order; with ``every`` > 1, every n-th of each folder (from its first)."""
    images = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if every == 1:
        return images
    count: dict[Path, int] = {}
    sample = []
    for p in images:
        count[p.parent] = count.get(p.parent, -1) + 1
        if count[p.parent] % every == 0:
            sample.append(p)
    return sample


def _write(path: Path, image: np.ndarray, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 6]
    if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params):
        raise OSError(f"could not write {tmp}")
    tmp.replace(path)  # atomic: an interrupted run never leaves a half-written image to be reused


def _detect_with_padding(detector: FaceDetector, image: np.ndarray):
    """Largest face; for tight crops (face touching the edges, like FER's 48 px) MTCNN often fails, so try
    again on a copy padded by a mirrored border and map the landmarks back."""
    faces = detector.detect(image)
    if faces:
        return faces[0]
    h, w = image.shape[:2]
    pad = max(h, w) // 4
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    faces = detector.detect(padded)
    # keep only a face whose centre lies in the original image, not in a mirrored copy
    for face in faces:
        cx, cy = (face.box[0] + face.box[2]) / 2 - pad, (face.box[1] + face.box[3]) / 2 - pad
        if 0 <= cx < w and 0 <= cy < h:
            face.landmarks = face.landmarks - pad
            x0, y0, x1, y1 = face.box
            face.box = (x0 - pad, y0 - pad, x1 - pad, y1 - pad)
            return face
    return None


def prepare(
    src: str | Path,
    out: str | Path,
    template: Sequence[Sequence[float]] | np.ndarray | str = "celeba_hq_128",
    size: int = 128,
    fmt: str = "jpg",
    detector: FaceDetector | None = None,
    border: str = "soft",
    log_every: int = 200,
    splits: Sequence[str] = ("train", "test"),
    every: int = 1,
) -> PrepareResult:
    """Align every image of `src` into `out` (see module docstring). Returns counts and the skipped list.

    ``splits``: an expression root's split folders to align; ``every``: align every n-th image of each folder
    only (a sample with the source's class mix).
    """
    src, out = Path(src).resolve(), Path(out).resolve()
    if fmt not in ("jpg", "png"):
        raise FaceError(f"format {fmt!r}: use jpg (quality 95) or png")
    if every < 1:
        raise FaceError(f"every={every}: align every n-th image, n >= 1")
    if not src.is_dir():
        raise FaceError(f"{src} is not a folder")
    repo = _inside_git_repo(out)
    if repo is not None:
        raise FaceError(f"{out} is inside the git work tree {repo}; data never goes into a repo, "
                        "write the prepared copy elsewhere (e.g. ../prepared/NAME)")
    if out == src or src in out.parents:
        raise FaceError(f"{out} is inside the source {src}; choose an output folder outside it")
    tmpl = parse_template(template) if isinstance(template, str) else np.asarray(template, float).reshape(5, 2)
    kind = detect_format(src)
    images = _list_images(src / "images", every) if kind == "celeba" else [
        p for split in splits if (src / split).is_dir() for p in _list_images(src / split, every)
    ]
    if not images:
        raise FaceError(f"{src}: no images found")
    detector = detector or FaceDetector()
    out.mkdir(parents=True, exist_ok=True)
    result = PrepareResult(out=out)
    renamed: dict[str, str] = {}  # CelebA file name -> output file name
    start = time.perf_counter()
    logger.info("prepare: %d images in %s (%s format) -> %s", len(images), src, kind, out)
    for i, path in enumerate(images, 1):
        rel = path.relative_to(src)
        dest = out / rel.with_suffix("." + fmt)
        if dest.is_file():
            result.reused += 1
        else:
            try:
                image = load_image(path)
                face = _detect_with_padding(detector, image)
                if face is None:
                    result.skipped.append((rel.as_posix(), "no face found"))
                else:
                    _write(dest, align(image, face, tmpl, size, border=border).image, fmt)
                    result.found += 1
            except FaceError as exc:
                result.skipped.append((rel.as_posix(), str(exc)))
        if dest.is_file():
            renamed[path.name] = dest.name
        if i % log_every == 0 or i == len(images):
            rate = i / max(time.perf_counter() - start, 1e-9)
            logger.info("prepare: %d/%d (%.1f img/s), %d skipped", i, len(images), rate, len(result.skipped))
    if kind == "celeba":
        _write_celeba_labels(src, out, renamed)
    (out / "skipped.txt").write_text("".join(f"{p}\t{why}\n" for p, why in result.skipped))
    info = {
        "source": str(src),
        "format": kind,
        "template": [[float(v) for v in p] for p in tmpl],
        "template_name": template if isinstance(template, str) else None,
        "size": size,
        "image_format": fmt,
        "border": border,
        "images": result.total,
        "aligned": result.found + result.reused,
        "skipped": len(result.skipped),
        "command": shlex.join([Path(sys.executable).name, "-m", "stargan.prepare", *sys.argv[1:]])
        if sys.argv and sys.argv[0].endswith("prepare.py") else None,
    }
    (out / "prepare.json").write_text(json.dumps(info, indent=2) + "\n")
    return result


def _write_celeba_labels(src: Path, out: Path, renamed: dict[str, str]) -> None:
    """Copy CelebA's label files, keeping only (renamed) rows of images that were aligned."""
    attr_lines = (src / CELEBA_ATTR).read_text().splitlines()
    header, rows = attr_lines[1], [line for line in attr_lines[2:] if line.strip()]
    kept = []
    for line in rows:
        name, rest = line.split(maxsplit=1)
        if name in renamed:
            kept.append(f"{renamed[name]} {rest}")
    (out / CELEBA_ATTR).write_text("\n".join([str(len(kept)), header, *kept]) + "\n")
    if (src / CELEBA_SPLIT).is_file():
        split_rows = []
        for line in (src / CELEBA_SPLIT).read_text().splitlines():
            if not line.strip():
                continue
            name, part = line.split()
            if name in renamed:
                split_rows.append(f"{renamed[name]} {part}")
        (out / CELEBA_SPLIT).write_text("\n".join(split_rows) + "\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line, every option with its help (what it does, its unit, when to change it)."""
    parser = argparse.ArgumentParser(
        prog="python -m stargan.prepare", description="Align a dataset's faces to the model's template.",
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="the dataset: a CelebA-format folder (images/, list_attr_celeba.txt) or an "
                                    "expression folder root (train/, test/, one folder per class)")
    parser.add_argument("--out", required=True,
                        help="the output folder for the aligned copy; must be outside any git repository and outside "
                             "SRC. Rerunning with the same --out resumes: images already there are reused")
    parser.add_argument("--template", default="celeba_hq_128",
                        help=f"where the five landmarks (eyes, nose, mouth corners) land in the output square: one of "
                             f"{sorted(TEMPLATES)}, or ten numbers x1,y1,...,x5,y5 in [0, 1] of the square's side. "
                             "Use the template of the model you train or fine-tune (default: %(default)s, the "
                             "framing of data/celeba_hq_128)")
    parser.add_argument("--size", type=int, default=128,
                        help="side of the square output images, in pixels (default %(default)s); the trainer "
                             "resizes them to its --image-size, so make it at least that (never upscale)")
    parser.add_argument("--format", dest="fmt", choices=("jpg", "png"), default="jpg",
                        help="jpg (quality 95, default: a fraction of the size) or png (lossless, when the "
                             "source images are lossless and disk space is no concern)")
    parser.add_argument("--border", choices=("soft", "reflect", "replicate", "constant"), default="soft",
                        help="how to fill where the aligned crop reaches past the photo's edge (tight or small "
                             "photos): soft (mirror fading into a blur, default: no hard edge in the image), "
                             "reflect (mirror), replicate (stretch the edge pixels), constant (black)")
    parser.add_argument("--min-score", type=float, default=0.9,
                        help="MTCNN detection confidence, 0 to 1, below which a face is ignored (default "
                             "%(default)s); lower it when too many images are skipped (small, blurry or turned "
                             "faces: see DIR/skipped.txt), raise it to drop doubtful detections")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        result = prepare(args.src, args.out, args.template, args.size, args.fmt,
                         detector=FaceDetector(min_score=args.min_score), border=args.border)
    except FaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    per_class: dict[str, int] = {}
    for rel, _ in result.skipped:
        key = str(Path(rel).parent)
        per_class[key] = per_class.get(key, 0) + 1
    for key, count in sorted(per_class.items()):
        print(f"  skipped in {key}: {count}")
    print(f"{result.total} images: {result.found} aligned, {result.reused} already there, "
          f"{len(result.skipped)} skipped (no face; listed in {result.out / 'skipped.txt'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
