"""Command line over stargan.inference: edit the faces of a photo or a video, or read what D_cls sees in them.

    python -m stargan.translate photo.jpg --set Blond_Hair=1 --set happy=1 --out edited.png
    python -m stargan.translate photo.jpg --read
    python -m stargan.translate clip.mp4 --set Blond_Hair=1 --out edited.mp4  # a video: the sound is not kept

A video's face is followed from frame to frame (stargan.live, as the demo's live mode does); its frames are read
and written with OpenCV, which copies no sound track: add the sound back with a video tool if you need it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from .domains import RELATED_BY_DEFAULT
from .face import DEFAULT_UPSAMPLE, UPSAMPLES, FaceError
from .inference import DEFAULT_WEIGHTS, MODES, Editor
from .weights import WeightsError

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"}
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}  # what OpenCV's wheels can write


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


def build_parser() -> argparse.ArgumentParser:
    """The command line, every option with its help (what it does, its unit, when to change it)."""
    parser = argparse.ArgumentParser(
        prog="python -m stargan.translate", description=__doc__.splitlines()[0],
        epilog="Examples:\n" + "\n".join(line for line in __doc__.splitlines() if "python -m" in line),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo", type=Path, help="the photo to edit or read (JPEG, PNG, WebP, BMP, TIFF); every "
                                                 "face in it is found and aligned to the model's framing. Or a video "
                                                 f"({', '.join(sorted(VIDEO_SUFFIXES))}): its largest face is followed "
                                                 "and edited in every frame (--face and --faces-out do not apply)")
    parser.add_argument("--set", dest="settings", type=_setting, action="append", default=[], metavar="NAME=VALUE",
                        help="a label and its target intensity, 0 (absent) to 1 (present); values in between give "
                             "partial edits. Repeat for several, attributes and expressions alike (--list shows "
                             "the names). Labels not set keep what the face shows")
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS),
                        help="the model: a weights folder or a Hugging Face Hub id owner/name[@revision] "
                             "(default: the shipped model, %(default)s)")
    parser.add_argument("--face", type=_face, default=0,
                        help="which face to edit: 0 = the largest (default), 1 the next largest, ..., or 'all'")
    parser.add_argument("--mode", choices=MODES, default="delta",
                        help="delta (default): paste G's change onto the photo, keeping its detail and resolution; "
                             "direct: paste G's own picture of the face (model resolution, softer)")
    parser.add_argument("--upsample", choices=UPSAMPLES, default=DEFAULT_UPSAMPLE,
                        help="how G's change reaches the photo's resolution (mode delta): bilinear interpolates "
                             "(default, the most accurate in benchmarks/HISTORY.md); guided follows the photo's own "
                             "edges (OpenCV's guided filter)")
    parser.add_argument("--strength", type=float, default=1.0,
                        help="a multiplier on the change G makes, 0 to 3 (default 1: G's own edit). Above 1 "
                             "exaggerates a subtle edit, and its colour errors with it; below 1 a lighter touch")
    parser.add_argument("--related", action=argparse.BooleanOptionalAction, default=RELATED_BY_DEFAULT,
                        help="move the attributes that go with an edit along with it: Male=1 also takes off make-up "
                             "and jewellery, Male=0 facial hair, Smiling=1 lifts the cheeks and opens the mouth; names "
                             "you --set stay as set. Off by default: with the shipped model it reads as the target "
                             "more often but paints colour patches")
    parser.add_argument("--regions", action=argparse.BooleanOptionalAction, default=True,
                        help="keep each edit to its region (default): a hair colour changes the hair, not the skin, "
                             "and no edit tints the background. --no-regions pastes G's change wherever G makes it")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="number format of the networks: auto (default) measures bf16 against fp32 once at "
                             "start and uses bf16 only where the hardware has it and it is faster and within "
                             "tolerance; fp32 for exact, reproducible outputs; bf16 to force it")
    parser.add_argument("--device", default="cpu",
                        help="where the networks run: cpu (default), or cuda / cuda:N to use a GPU when there is "
                             "one (worth it for large models)")
    parser.add_argument("--out", type=Path, help="where to write the edited photo (PNG, full resolution of the input), "
                                                 "or the edited video (.mp4 or .avi, the input's size and frame rate; "
                                                 "without sound: the sound track is not copied)")
    parser.add_argument("--faces-out", type=Path,
                        help="optional: also write the aligned faces, before | after side by side, one row per "
                             "edited face (PNG, at the photo's resolution), to see exactly what G did")
    parser.add_argument("--read", action="store_true",
                        help="print what the discriminator reads from each face: every label's probability in "
                             "[0, 1] and the face's box in pixels (JSON); needs discriminator.safetensors")
    parser.add_argument("--list", action="store_true", help="print the model's label names, by dataset, and exit")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress: model loading, chosen precision, face detection")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not (args.read or args.list or args.out):
        parser.error("nothing to do: give --out (with --set NAME=VALUE), --read or --list")
    video = args.photo.suffix.lower() in VIDEO_SUFFIXES
    if video and (args.read or args.faces_out or args.face not in (0, "0")):
        parser.error("a video's largest face is edited: --read, --faces-out and --face apply to photos only")
    try:
        editor = Editor(args.weights, device=args.device, precision=args.precision)
        if args.list:
            for d in editor.space.datasets:
                print(f"{d.name} ({d.kind}): {' '.join(d.names)}")
            if not (args.read or args.out):
                return 0
        if video:
            return edit_video(editor, args.photo, args.out, dict(args.settings), mode=args.mode,
                              strength=args.strength, upsample=args.upsample, related=args.related,
                              regions=args.regions)
        prepared = editor.prepare(args.photo)
        if args.read:
            print(json.dumps([{"face": f.index, "box": [round(v, 1) for v in f.face.box],
                               "labels": {k: round(v, 4) for k, v in f.labels.items()}} for f in prepared.faces],
                             indent=2))
        if args.out:
            result = editor.edit(prepared, dict(args.settings), face=args.face, mode=args.mode,
                                 strength=args.strength, upsample=args.upsample, related=args.related,
                                 regions=args.regions)
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


def edit_video(editor: Editor, source: Path, out: Path, settings: dict[str, float], **edit_options) -> int:
    """Edit the largest face of every frame of ``source`` (followed by stargan.live.FaceTracker) into ``out``, at
    the input's size and frame rate, without sound; a progress bar on stderr. Returns the exit status."""
    import time

    import cv2
    from tqdm import tqdm

    from .live import FaceTracker

    codec = VIDEO_CODECS.get(out.suffix.lower())
    if codec is None:
        raise ValueError(f"--out {out}: write the video as {' or '.join(sorted(VIDEO_CODECS))}")
    if not source.is_file():
        raise FileNotFoundError(f"no such video file: {source}")
    editor.check_settings(settings)  # unknown names and bad values fail before any frame is read
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise ValueError(f"{source}: OpenCV cannot read this video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    tracker = FaceTracker(editor)
    writer = None
    frames = faces = 0
    t0 = time.perf_counter()
    try:
        with tqdm(total=total, unit="frame", desc=source.name, dynamic_ncols=True) as bar:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                if writer is None:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*codec), fps,
                                             (bgr.shape[1], bgr.shape[0]))
                    if not writer.isOpened():
                        raise ValueError(f"{out}: OpenCV cannot write a {codec} video here")
                shown = tracker.edit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), settings, **edit_options)
                writer.write(cv2.cvtColor(shown.image, cv2.COLOR_RGB2BGR))
                frames += 1
                faces += shown.face
                bar.update()
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if frames == 0:
        raise ValueError(f"{source}: no frame could be read")
    seconds = time.perf_counter() - t0
    print(f"wrote {out} ({frames} frames, a face in {faces}, re-detected in {tracker.detections}; "
          f"{frames / seconds:.1f} frames/s; no sound)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
