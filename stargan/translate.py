"""Command line over stargan.inference: edit the faces of a photo, or read what D_cls sees in them.

    python -m stargan.translate photo.jpg --set Blond_Hair=1 --set happy=1 --out edited.png
    python -m stargan.translate photo.jpg --read
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from .face import DEFAULT_UPSAMPLE, UPSAMPLES, FaceError
from .inference import DEFAULT_WEIGHTS, MODES, Editor
from .weights import WeightsError


def _setting(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=VALUE, e.g. Blond_Hair=1 or happy=0.7")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a number in [0, 1]") from None


def _face(text: str) -> int | str:
    if text == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--face {text!r}: use a face number (0 = largest) or 'all'") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stargan.translate", description=__doc__.splitlines()[0])
    parser.add_argument("photo", type=Path, help="the photo to edit (JPEG, PNG, WebP, ...)")
    parser.add_argument("--set", dest="settings", type=_setting, action="append", default=[], metavar="NAME=VALUE",
                        help="a label and its intensity in [0, 1]; repeat for several (attributes and expressions)")
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS),
                        help="weights folder or Hugging Face Hub id owner/name[@revision] (default: %(default)s)")
    parser.add_argument("--face", type=_face, default=0, help="which face: 0 = largest (default), N, or 'all'")
    parser.add_argument("--mode", choices=MODES, default="delta",
                        help="delta: paste G's change onto the photo (default); direct: paste G's picture")
    parser.add_argument("--upsample", choices=UPSAMPLES, default=DEFAULT_UPSAMPLE,
                        help="how G's change reaches the photo's resolution (mode delta): guided follows the "
                             "photo's own edges, bilinear only interpolates (default: %(default)s)")
    parser.add_argument("--strength", type=float, default=1.0,
                        help="multiply the change G makes, 0 to 3 (default 1; above 1 exaggerates a subtle edit)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="where to write the edited photo (PNG)")
    parser.add_argument("--faces-out", type=Path, help="optional: write the aligned faces before|after (at the photo's resolution) here")
    parser.add_argument("--read", action="store_true", help="print the labels D_cls reads from each face (JSON)")
    parser.add_argument("--list", action="store_true", help="print the model's label names and exit")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not (args.read or args.list or args.out):
        parser.error("nothing to do: give --out (with --set NAME=VALUE), --read or --list")
    try:
        editor = Editor(args.weights, device=args.device, precision=args.precision)
        if args.list:
            for d in editor.space.datasets:
                print(f"{d.name} ({d.kind}): {' '.join(d.names)}")
            if not (args.read or args.out):
                return 0
        prepared = editor.prepare(args.photo)
        if args.read:
            print(json.dumps([{"face": f.index, "box": [round(v, 1) for v in f.face.box],
                               "labels": {k: round(v, 4) for k, v in f.labels.items()}} for f in prepared.faces],
                             indent=2))
        if args.out:
            result = editor.edit(prepared, dict(args.settings), face=args.face, mode=args.mode,
                                 strength=args.strength, upsample=args.upsample)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(result.photo).save(args.out, format="PNG")
            print(f"wrote {args.out} ({len(result.face_indices)} face(s) edited, {result.seconds * 1e3:.0f} ms)")
            if args.faces_out:
                import cv2
                import numpy as np

                side = max(v.shape[0] for v in result.before)  # faces differ in size: show them all at one
                rows = [cv2.resize(np.concatenate([b, a], axis=1), (2 * side, side), interpolation=cv2.INTER_CUBIC)
                        for b, a in zip(result.before, result.after, strict=True)]
                Image.fromarray(np.concatenate(rows, axis=0)).save(args.faces_out, format="PNG")
    except (FaceError, WeightsError, FileNotFoundError, KeyError, ValueError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
