"""Paste-back of G's change (delta) against pasting G's picture (direct), on real unaligned photos (issue 10).

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/paste_compare.py [--weights W] [--limit 30] [--json out.json]

For every photo of ../shared/data/celeba_wild_sample (STARGAN_DATA overrides the data root) the largest face is
edited with each of a few edits, in both modes. Measured on the photo itself, at its full resolution:

* sharpness: variance of the Laplacian of the grey face box (MTCNN's box), edited / original. 1.0 keeps the
  photo's detail; below 1 the face got blurrier (G works at the model's size, so its picture is upsampled).
* change outside the edit: mean |edited - original| (0..255) over the pixels of the crop's footprint outside
  the face box (hair, ears, neck, background), and over the whole footprint for the "untouched" edit, where
  every control stays at what D_cls reads (nothing should change).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stargan.face import FaceError  # noqa: E402
from stargan.inference import Editor, mean_chroma  # noqa: E402

EDITS: dict[str, dict[str, float]] = {
    "untouched": {},
    "Blond_Hair": {"Blond_Hair": 1.0},
    "Male flipped": {},  # filled per face: the opposite of what D_cls reads
    "Smiling": {"Smiling": 1.0},
    "happy": {"happy": 1.0},
}


def laplacian_var(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def footprint(photo: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    h, w = photo.shape[:2]
    cover = cv2.warpAffine(np.ones((size, size), np.float32), matrix, (w, h),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0)
    return cover > 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "weights" / "stargan-studio"))
    parser.add_argument("--data", default=os.environ.get("STARGAN_DATA", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--limit", type=int, default=30, help="photos to use (sorted by name)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = Path(args.data) / "celeba_wild_sample"
    if not folder.is_dir():
        print(f"error: {folder} not found; set STARGAN_DATA to the shared data folder", file=sys.stderr)
        return 2
    editor = Editor(args.weights)
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.limit]
    rows: dict[str, dict[str, list[float]]] = {}
    used = 0
    t0 = time.time()
    for path in photos:
        try:
            prepared = editor.prepare(path)
        except FaceError as e:
            print(f"skip {path.name}: {e}", file=sys.stderr)
            continue
        used += 1
        face = prepared.faces[0]
        photo = prepared.photo
        x0, y0, x1, y1 = (int(round(v)) for v in face.face.box)
        x0, y0 = max(0, x0), max(0, y0)
        box = np.zeros(photo.shape[:2], bool)
        box[y0:y1, x0:x1] = True
        cover = footprint(photo, face.matrix, editor.image_size)
        ring = cover & ~box
        sharp0 = laplacian_var(photo[y0:y1, x0:x1])
        chroma0 = mean_chroma(photo, box)
        for name, settings in EDITS.items():
            if name == "Male flipped":
                settings = {"Male": 0.0 if face.labels.get("Male", 0.0) >= 0.5 else 1.0}
            for mode in ("delta", "direct"):
                out = editor.edit(prepared, settings, mode=mode).photo
                diff = np.abs(out.astype(np.float64) - photo).mean(2)
                r = rows.setdefault(f"{name}|{mode}", {})
                r.setdefault("sharpness_ratio", []).append(laplacian_var(out[y0:y1, x0:x1]) / max(sharp0, 1e-9))
                r.setdefault("change_outside_face", []).append(float(diff[ring].mean()) if ring.any() else 0.0)
                r.setdefault("change_in_footprint", []).append(float(diff[cover].mean()))
                r.setdefault("change_in_face", []).append(float(diff[box].mean()))
                r.setdefault("chroma_ratio", []).append(mean_chroma(out, box) / max(chroma0, 1e-9))
    summary = {key: {metric: round(statistics.mean(v), 4) for metric, v in metrics.items()}
               for key, metrics in rows.items()}
    print(f"{used} photos, {time.time() - t0:.0f} s, weights {args.weights} ({editor.precision})")
    header = f"{'edit':14} {'mode':6} {'sharpness':>9} {'outside':>8} {'footprint':>9} {'face':>6} {'chroma':>6}"
    print(header)
    for key, m in summary.items():
        name, mode = key.split("|")
        print(f"{name:14} {mode:6} {m['sharpness_ratio']:9.3f} {m['change_outside_face']:8.2f} "
              f"{m['change_in_footprint']:9.2f} {m['change_in_face']:6.2f} {m['chroma_ratio']:6.3f}")
    if args.json:
        args.json.write_text(json.dumps({"photos": used, "weights": args.weights, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
