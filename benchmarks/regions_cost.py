"""What edit regions (stargan/regions.py) cost: finding a face's regions (once, at its first edit) against
``Editor.prepare``, and a slider edit with and without them, in one run.

    python benchmarks/regions_cost.py PHOTO [PHOTO ...] [--rounds 3] [--edits 40]

Prepare: every photo ``--rounds`` times, then the regions of its largest face.
Edit: ``--edits`` Blond_Hair edits of the first photo at varying strengths, with and without regions,
interleaved; the ratio of the medians is the claim (absolute times on a shared machine are noisy).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import stargan.inference as inference  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", nargs="+")
    p.add_argument("--weights", default=str(inference.DEFAULT_WEIGHTS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--edits", type=int, default=40)
    args = p.parse_args()

    editor = inference.Editor(args.weights)
    editor.prepare(args.photos[0])  # load the detector, warm up
    prepare_s, regions_s = [], []
    for _ in range(args.rounds):
        for photo in args.photos:
            start = time.perf_counter()
            prepared = editor.prepare(photo)
            prepare_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            editor.regions_for(prepared.faces[0])  # what the face's first edit adds
            regions_s.append(time.perf_counter() - start)
    print(f"prepare: median {np.median(prepare_s) * 1e3:.0f} ms per photo; regions (once per face, at its first "
          f"edit) median {np.median(regions_s) * 1e3:.0f} ms, {np.median(regions_s) / np.median(prepare_s):.0%} of "
          "a prepare")

    prepared = editor.prepare(args.photos[0])
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(args.edits):
        for regions in (True, False):
            start = time.perf_counter()
            editor.edit(prepared, {"Blond_Hair": 0.5 + (i % 5) / 10}, regions=regions)
            times[regions].append(time.perf_counter() - start)
    kept, anywhere = np.median(times[True]), np.median(times[False])
    print(f"edit: median {kept * 1e3:.1f} ms with regions, {anywhere * 1e3:.1f} ms without, ratio {kept / anywhere:.2f}")


if __name__ == "__main__":
    main()
