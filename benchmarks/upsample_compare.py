"""Guided vs bilinear upsampling of G's change to the photo's resolution, on real photos.

    nice -n 19 env OMP_NUM_THREADS=1 python benchmarks/upsample_compare.py known [--limit 30] [--sweep]
    nice -n 19 env OMP_NUM_THREADS=1 python benchmarks/upsample_compare.py wild [--limit 30] [--sheet PNG]

``known``: a known answer. On each photo of ../shared/data/celeba_wild_sample (STARGAN_DATA overrides the data
root) a crisp edit is made at the photo's full resolution: the photo's dark pixels (Otsu threshold over the
crop's footprint: hair, brows, eyes, dark clothes) take a colour change inside that sharp mask, plus a smooth
change that varies over the face. The edit is brought down to the model's crop exactly as a face is, pasted back
by each method, and compared with the true edit pasted at full resolution: mean |error| (0..255) over the crop's
footprint and over the band of one model pixel either side of the mask's edges. "smooth only" is the smooth part
alone, which bilinear upsampling reproduces exactly: the guided filter must not add the photo's texture to it.
``--sweep`` tries guides, radii and regularisations (the settings in stargan/face.py were chosen this way).

``wild``: G's real edits (the shipped model through stargan.inference.Editor), both methods, on the largest face:
* edge correlation: Pearson correlation of the gradient magnitude of the change (pasted without the feathered
  mask, so only the change's own edges count) with the photo's, over the crop's inner 80%;
* change on the background near the head and on the person: mean |change| (0..255, the edit as pasted) over
  GrabCut's background within 0.3 face widths of the person, and over the person, inside the crop's footprint;
* time per edit (Editor.edit, G + paste, median).
``--sheet`` writes zoomed crops (hair line, jaw, background by the head) at the photos' own pixels.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stargan.face import UPSAMPLES, FaceError, crop_mask, model_pixel, paste_delta, warp_to_crop  # noqa: E402

SHARP_CHANGE = (70.0, 45.0, 0.0)  # RGB, added inside the sharp mask: dark hair turned warm and light
SMOOTH_CHANGE = (18.0, 8.0, -12.0)  # RGB amplitude of the smooth part


# ------------------------------------------------------------------------------------------ known answer
def to_photo(array: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A crop-space float array warped bilinearly onto the whole photo (zero outside the crop)."""
    return cv2.warpAffine(np.asarray(array, np.float32), matrix, (shape[1], shape[0]),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def known_edit(photo: np.ndarray, matrix: np.ndarray, size: int, feather: float, sharp: bool = True
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A crisp edit of a real photo and its version at the model's size.

    Returns (true edited photo uint8, the edit in crop space (size, size, 3) float, footprint (H, W) bool, edge
    band (H, W) bool: pixels within one model pixel of the sharp mask's edges, inside the footprint)."""
    alpha = to_photo(crop_mask(size, feather), matrix, photo.shape)
    footprint = alpha > 0
    scale = model_pixel(matrix)
    # regions, not texture: the photo's grey level smoothed over about a model pixel (edges kept), thresholded
    grey = cv2.medianBlur(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), 2 * round(scale / 2) + 1)
    threshold, _ = cv2.threshold(grey[alpha > 0.5].reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (grey < threshold).astype(np.float32) if sharp else np.zeros(grey.shape, np.float32)
    full = mask[:, :, None] * np.asarray(SHARP_CHANGE, np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    smooth_crop = (np.sin(np.pi * yy) * (2 * xx - 1))[:, :, None] * np.asarray(SMOOTH_CHANGE, np.float32)
    full = full + to_photo(smooth_crop, matrix, photo.shape)
    truth = np.clip(np.rint(photo + alpha[:, :, None] * full), 0, 255).astype(np.uint8)
    small = warp_to_crop(np.ascontiguousarray(full - to_photo(smooth_crop, matrix, photo.shape)), matrix, size,
                         border="constant") + smooth_crop
    k = 2 * max(1, round(scale)) + 1
    kernel = np.ones((k, k), np.uint8)
    edges = cv2.dilate(mask, kernel) != cv2.erode(mask, kernel)
    return truth, small.astype(np.float32), footprint, edges & footprint


def known_errors(photo: np.ndarray, matrix: np.ndarray, size: int, feather: float, sharp: bool = True,
                 **upsample) -> tuple[float, float]:
    """(mean |error| over the footprint, over the edge band) of paste_delta(**upsample) against the truth."""
    truth, small, footprint, band = known_edit(photo, matrix, size, feather, sharp)
    out = paste_delta(photo, small, matrix, feather=feather, **upsample)
    err = np.abs(out.astype(np.float32) - truth).mean(2)
    return float(err[footprint].mean()), float(err[band].mean()) if band.any() else 0.0


# ------------------------------------------------------------------------------------------ wild photos
def edge_correlation(photo: np.ndarray, change: np.ndarray, region: np.ndarray) -> float:
    """Pearson correlation of |gradient| of the change with |gradient| of the photo over `region`."""
    def grad(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float32)
        gx, gy = cv2.Sobel(a, cv2.CV_32F, 1, 0), cv2.Sobel(a, cv2.CV_32F, 0, 1)
        mag = gx**2 + gy**2
        return np.sqrt(mag.sum(2) if mag.ndim == 3 else mag)

    g1, g2 = grad(change)[region], grad(photo)[region]
    return float(np.corrcoef(g1, g2)[0, 1]) if g1.std() > 0 else float("nan")  # nan: the edit changed nothing


def person_mask(photo: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """GrabCut's foreground (the person), started from a rectangle round the head and shoulders."""
    h, w = photo.shape[:2]
    scale = min(1.0, 400 / max(h, w))
    small = cv2.resize(photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    rect = [max(1, x0 - 0.6 * bw), max(1, y0 - 0.8 * bh), min(w - 2, x1 + 0.6 * bw), h - 2]
    rect = [round(v * scale) for v in rect]
    mask = np.zeros(small.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask, (rect[0], rect[1], rect[2] - rect[0], rect[3] - rect[1]),
                bgd, fgd, 5, cv2.GC_INIT_WITH_RECT)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    return cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)


def zoom_boxes(box: tuple[float, float, float, float], shape: tuple[int, ...]) -> dict[str, tuple[int, int, int, int]]:
    """Square photo regions (x0, y0, x1, y1) round the hair line, the jaw and the background by the head."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    centres = {"hair line": ((x0 + x1) / 2, y0 - 0.05 * h), "jaw": (x0 + 0.2 * w, y1 - 0.05 * h),
               "background": (x1 + 0.15 * w, y0 + 0.1 * h)}
    half = 0.25 * w
    out = {}
    for name, (cx, cy) in centres.items():
        a, b = max(0, round(cx - half)), max(0, round(cy - half))
        out[name] = (a, b, min(shape[1], round(cx + half)), min(shape[0], round(cy + half)))
    return out


def label(tile: np.ndarray, text: str) -> np.ndarray:
    tile = tile.copy()
    cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def sheet_rows(name: str, photo: np.ndarray, outs: dict[str, np.ndarray], box, tile: int) -> list[np.ndarray]:
    rows = []
    for region, (a, b, c, d) in zoom_boxes(box, photo.shape).items():
        def crop(img: np.ndarray, a: int = a, b: int = b, c: int = c, d: int = d) -> np.ndarray:
            return cv2.resize(img[b:d, a:c], (tile, tile), interpolation=cv2.INTER_NEAREST)

        cells = [label(crop(photo), f"{name[:18]}: {region}")]
        cells += [label(crop(outs[m]), m) for m in UPSAMPLES]
        for m in UPSAMPLES:  # the change itself, signed, x3 around grey
            change = np.clip(128 + 3.0 * (outs[m].astype(np.float32) - photo), 0, 255).astype(np.uint8)
            cells.append(label(crop(change), f"change, {m}"))
        rows.append(np.concatenate(cells, axis=1))
    return rows


# ------------------------------------------------------------------------------------------------- main
def photos(data: str, limit: int) -> list[Path]:
    folder = Path(data) / "celeba_wild_sample"
    if not folder.is_dir():
        sys.exit(f"error: {folder} not found; set STARGAN_DATA to the shared data folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]


def prepared_photos(editor, paths: list[Path]) -> Iterator[tuple[Path, Any]]:
    """(path, Editor.prepare(path)) for each photo with a face; the others are reported and skipped."""
    for path in paths:
        try:
            yield path, editor.prepare(path)
        except FaceError as e:
            print(f"skip {path.name}: {e}", file=sys.stderr)


def run_known(editor, paths: list[Path], sweep: bool) -> None:
    settings: dict[str, dict] = {"bilinear": {"upsample": "bilinear"}, "guided (shipped settings)": {"upsample": "guided"}}
    if sweep:
        for colour in (True, False):
            for radius in (0.5, 1.0, 2.0, 4.0):
                for eps in (1e-4, 1e-3, 1e-2, 1e-1):
                    settings[f"{'rgb' if colour else 'luma'} r={radius} eps={eps:g}"] = dict(
                        upsample="guided", radius=radius, eps=eps, colour=colour)
    rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in settings}
    pixels = []
    for _, prepared in prepared_photos(editor, paths):
        f = prepared.faces[0]
        pixels.append(model_pixel(f.matrix))
        for key, kw in settings.items():
            full, band = known_errors(prepared.photo, f.matrix, editor.image_size, editor.feather, True, **kw)
            smooth, _ = known_errors(prepared.photo, f.matrix, editor.image_size, editor.feather, False, **kw)
            rows[key].append((full, band, smooth))
    print(f"{len(pixels)} photos; photo pixels per model pixel: median {statistics.median(pixels):.1f}, "
          f"range {min(pixels):.1f}-{max(pixels):.1f}")
    print("| upsampling | error, footprint | error, edge band | error, smooth only |")
    print("| --- | ---: | ---: | ---: |")
    for key, values in sorted(rows.items(), key=lambda kv: statistics.mean(v[0] for v in kv[1])):
        m = [statistics.mean(v[i] for v in values) for i in range(3)]
        print(f"| {key} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} |")


def run_wild(editor, paths: list[Path], sheet: Path | None, sheet_names: list[str], tile: int) -> None:
    edits = {"Blond_Hair": {"Blond_Hair": 1.0}, "Black_Hair": {"Black_Hair": 1.0}, "Male flipped": {},
             "Smiling": {"Smiling": 1.0}}
    metrics: dict[tuple[str, str], dict[str, list[float]]] = {}
    times: dict[str, list[float]] = {m: [] for m in UPSAMPLES}
    rows: list[np.ndarray] = []
    used = 0
    for path, prepared in prepared_photos(editor, paths):
        used += 1
        f = prepared.faces[0]
        photo = prepared.photo
        s = editor.image_size
        inner = np.zeros((s, s), np.float32)
        inner[s // 10: s - s // 10, s // 10: s - s // 10] = 1
        inner = to_photo(inner, f.matrix, photo.shape) > 0.99
        footprint = to_photo(np.ones((s, s)), f.matrix, photo.shape) > 0
        person = person_mask(photo, f.face.box)
        width = f.face.box[2] - f.face.box[0]
        near = cv2.dilate(person.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, round(0.3 * width)))
        background = footprint & ~person & near.astype(bool)
        for name, settings in edits.items():
            if name == "Male flipped":
                settings = {"Male": 0.0 if f.labels.get("Male", 0.0) >= 0.5 else 1.0}
            outs = {}
            for m in UPSAMPLES:
                t0 = time.perf_counter()
                outs[m] = editor.edit(prepared, settings, upsample=m).photo
                times[m].append(time.perf_counter() - t0)
                feather, editor.feather = editor.feather, 1e-6  # no feathering: the change's own edges only
                try:
                    raw = editor.edit(prepared, settings, upsample=m).photo
                finally:
                    editor.feather = feather
                change = np.abs(outs[m].astype(np.float32) - photo).mean(2)
                r = metrics.setdefault((name, m), {})
                r.setdefault("edge_corr", []).append(edge_correlation(photo, raw.astype(np.float32) - photo, inner))
                r.setdefault("background", []).append(float(change[background].mean()) if background.any() else 0.0)
                r.setdefault("person", []).append(float(change[footprint & person].mean()))
            if sheet is not None and name == "Blond_Hair" and path.stem in sheet_names:
                rows += sheet_rows(path.stem, photo, outs, f.face.box, tile)
    print(f"{used} photos, weights {editor.source} ({editor.precision})")
    print("| edit | upsampling | edge correlation | change on background near head | change on person |")
    print("| --- | --- | ---: | ---: | ---: |")
    for (name, m), r in metrics.items():
        print(f"| {name} | {m} | {np.nanmean(r['edge_corr']):.3f} | {statistics.mean(r['background']):.2f} | "
              f"{statistics.mean(r['person']):.2f} |")
    for m in UPSAMPLES:
        print(f"Editor.edit, {m}: median {statistics.median(times[m]) * 1e3:.1f} ms over {len(times[m])} edits")
    if sheet is not None and rows:
        sheet.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(sheet), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"wrote {sheet}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("known", "wild"))
    parser.add_argument("--weights", default=str(ROOT / "weights" / "stargan-studio"))
    parser.add_argument("--data", default=os.environ.get("STARGAN_DATA", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--limit", type=int, default=30, help="photos to use (sorted by name)")
    parser.add_argument("--sweep", action="store_true", help="known: also try other guides, radii, eps")
    parser.add_argument("--sheet", type=Path, help="wild: write zoomed crops of the Blond_Hair edit here (PNG)")
    parser.add_argument("--sheet-photos", default="", help="comma-separated photo names (no suffix) for the sheet")
    parser.add_argument("--tile", type=int, default=160)
    args = parser.parse_args()
    from stargan.inference import Editor

    editor = Editor(args.weights)
    paths = photos(args.data, args.limit)
    t0 = time.time()
    if args.part == "known":
        run_known(editor, paths, args.sweep)
    else:
        run_wild(editor, paths, args.sheet, [n for n in args.sheet_photos.split(",") if n], args.tile)
    print(f"{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
