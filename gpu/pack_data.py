"""Pack the training data small enough to travel to a lent GPU machine (at most 64 MiB with the repo, see
gpu/README.md): the CelebA-HQ train split and prepared expression folders, re-encoded as WebP, in the
layouts ``stargan.data`` reads (a CelebA-format folder; RaFD-style ``<expression>/`` folders).

    python gpu/pack_data.py --out gpu_pack --celeba ../shared/data/celeba_hq_128 \\
        --expressions /work/prepared/expressions_posed.soft/train /work/prepared/expressions.soft/train

The pack is a training copy only (ignored by git, never committed). Quality 75 keeps a 128 px face at about
2.3 KB and a PSNR of 35 dB against the q90 JPEG source; ``--max-celeba`` takes a seeded subset of the train
split when the budget needs it.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stargan.data import IMAGE_SUFFIXES, CelebADataset, read_celeba_attributes  # noqa: E402
from stargan.domains import celeba as celeba_labels  # noqa: E402


def _encode(job: tuple[Path, Path, int]) -> int:
    src, dst, quality = job
    with Image.open(src) as im:
        im.convert("RGB").save(dst, "WEBP", quality=quality, method=6)  # slowest, smallest
    return dst.stat().st_size


def pack(out: Path, celeba: Path, expressions: list[Path], quality: int, max_celeba: int, seed: int,
         workers: int) -> None:
    jobs: list[tuple[Path, Path, int]] = []
    names, rows = read_celeba_attributes(celeba / "list_attr_celeba.txt")
    train = set(CelebADataset(celeba, celeba_labels(names), "train").files)  # the trainer's own split
    rows = [r for r in rows if r[0] in train]
    if max_celeba and len(rows) > max_celeba:
        rows = sorted(random.Random(seed).sample(rows, max_celeba), key=lambda r: int(Path(r[0]).stem))
    images = out / "celeba" / "images"
    images.mkdir(parents=True, exist_ok=True)
    attr_lines, part_lines = [str(len(rows)), " ".join(names)], []
    for name, values in rows:
        packed = Path(name).with_suffix(".webp").name
        jobs.append((celeba / "images" / name, images / packed, quality))
        attr_lines.append(" ".join([packed, *map(str, values)]))
        part_lines.append(f"{packed} 0")
    (out / "celeba" / "list_attr_celeba.txt").write_text("\n".join(attr_lines) + "\n")
    (out / "celeba" / "list_eval_partition.txt").write_text("\n".join(part_lines) + "\n")
    for i, root in enumerate(expressions):
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            target = out / f"expressions{i}" / folder.name
            target.mkdir(parents=True, exist_ok=True)
            jobs += [(f, target / f.with_suffix(".webp").name, quality) for f in sorted(folder.iterdir())
                     if f.suffix.lower() in IMAGE_SUFFIXES]
    total = 0
    with ProcessPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
        sizes = pool.map(_encode, jobs, chunksize=64) if pool else map(_encode, jobs)
        for n, size in enumerate(sizes, start=1):
            total += size
            if n % 5000 == 0 or n == len(jobs):
                print(f"{n}/{len(jobs)} images, {total / 2**20:.1f} MiB", flush=True)
    print(f"packed {len(rows)} CelebA train faces and {len(jobs) - len(rows)} expression faces into {out} "
          f"({total / 2**20:.1f} MiB)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("gpu_pack"))
    p.add_argument("--celeba", type=Path, required=True, help="a CelebA-format folder with list_eval_partition.txt")
    p.add_argument("--expressions", type=Path, nargs="*", default=[], help="prepared expression folders")
    p.add_argument("--quality", type=int, default=75, help="WebP quality")
    p.add_argument("--max-celeba", type=int, default=0, help="a seeded subset of the train split (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args(argv)
    if a.out.exists() and any(a.out.iterdir()):
        p.error(f"{a.out} is not empty; remove it first")
    pack(a.out, a.celeba, a.expressions, a.quality, a.max_celeba, a.seed, a.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
