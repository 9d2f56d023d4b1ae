"""Face pipeline: speed on a 12-megapixel photo, detection rate, landmark consistency, paste-back quality.

    python benchmarks/face_speed.py [--runs 15] [--data ../shared/data] [--skip-quality]

Speed: detection + alignment (128 px, CelebA-HQ template) of skimage's astronaut upscaled to 4000x3000,
the decoded image already in memory; median of --runs after one warm-up run. The minimum and the CPU time
(process time, all threads) are printed too: on a shared CPU the wall-clock median includes time other
processes took; with --threads 1 the CPU time is what the call costs on an idle core.
Quality (on ../shared/data/celeba_wild_sample, all photos): detection rate, mean landmark error when the
aligned crop is detected again, and whole-photo PSNR of an unedited paste-back, feathered vs Poisson
(cv2.seamlessClone).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stargan.face import (
    CELEBA_HQ_128_TEMPLATE,
    FaceDetector,
    align,
    crop_mask,
    load_image,
    paste_back,
    transform_points,
)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def poisson_paste(photo: np.ndarray, crop: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Paste-back by OpenCV's Poisson blending (seamlessClone), the alternative to the feathered mask."""
    h, w = photo.shape[:2]
    warped = cv2.warpAffine(crop, matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    mask = cv2.warpAffine((crop_mask(crop.shape[0]) > 0.5).astype(np.uint8) * 255, matrix, (w, h),
                          flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    mask[[0, -1], :] = 0
    mask[:, [0, -1]] = 0
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return photo.copy()
    centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
    return cv2.seamlessClone(warped, photo, mask, centre, cv2.NORMAL_CLONE)


def speed(runs: int) -> tuple[float, float, float]:
    photo = cv2.resize(skimage.data.astronaut(), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    detector = FaceDetector()
    align(photo, detector.detect(photo)[0])  # warm-up
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        faces = detector.detect(photo)
        align(photo, faces[0], CELEBA_HQ_128_TEMPLATE, 128)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(times), min(times), statistics.median(cpu)


def quality(data: Path) -> dict[str, float]:
    detector = FaceDetector()
    paths = sorted((data / "celeba_wild_sample").glob("*.jpg"))
    found, errors, feather, poisson, t_feather, t_poisson = 0, [], [], [], [], []
    for path in paths:
        image = load_image(path)
        faces = detector.detect(image)
        if not faces:
            print(f"  no face: {path.name}")
            continue
        found += 1
        aligned = align(image, faces[0])
        again = detector.detect(aligned.image)
        if again:
            expected = transform_points(faces[0].landmarks, aligned.matrix)
            errors.append(np.linalg.norm(again[0].landmarks - expected, axis=1).mean())
        start = time.perf_counter()
        feather.append(psnr(image, paste_back(image, aligned.image, aligned.matrix)))
        t_feather.append(time.perf_counter() - start)
        start = time.perf_counter()
        poisson.append(psnr(image, poisson_paste(image, aligned.image, aligned.matrix)))
        t_poisson.append(time.perf_counter() - start)
    return {
        "photos": len(paths),
        "detected": found,
        "redetected": len(errors),
        "landmark_error_px": float(np.mean(errors)),
        "landmark_error_p90_px": float(np.percentile(errors, 90)),
        "feather_psnr_median": float(np.median(feather)),
        "feather_psnr_min": float(np.min(feather)),
        "poisson_psnr_median": float(np.median(poisson)),
        "poisson_psnr_min": float(np.min(poisson)),
        "feather_ms": 1000 * float(np.median(t_feather)),
        "poisson_ms": 1000 * float(np.median(t_poisson)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    default_data = Path(os.environ.get("STARGAN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    median, best, cpu = speed(args.runs)
    print(f"12 MP (4000x3000) detection + alignment: median {median:.0f} ms, min {best:.0f} ms "
          f"over {args.runs} runs (target <= 150 ms); CPU time per call (all threads) {cpu:.0f} ms")
    if args.skip_quality:
        return
    if not (args.data / "celeba_wild_sample").is_dir():
        print(f"quality: skipped, {args.data / 'celeba_wild_sample'} not found (use --data or STARGAN_DATA)")
        return
    q = quality(args.data)
    print(f"wild sample detection rate: {q['detected']}/{q['photos']} = {q['detected'] / q['photos']:.1%}")
    print(f"re-detection on the aligned 128 px crop ({q['redetected']} faces): mean landmark error "
          f"{q['landmark_error_px']:.2f} px, 90th percentile {q['landmark_error_p90_px']:.2f} px")
    print(f"unedited paste-back, whole-photo PSNR: feathered median {q['feather_psnr_median']:.1f} dB "
          f"(min {q['feather_psnr_min']:.1f}), {q['feather_ms']:.0f} ms; Poisson median "
          f"{q['poisson_psnr_median']:.1f} dB (min {q['poisson_psnr_min']:.1f}), {q['poisson_ms']:.0f} ms")


if __name__ == "__main__":
    main()
