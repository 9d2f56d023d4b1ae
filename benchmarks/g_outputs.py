"""What G itself draws, before the demo's paste-back hides it: G's output for a face's own labels, and for edits.

    python benchmarks/g_outputs.py --weights A --weights B [--limit 30] [--sheet out.png]
    python benchmarks/g_outputs.py --weights RUN/checkpoints/step_00000400.pt   # a training checkpoint's G

The demo pastes G(x, c_target) - G(x, c_source), with c_source what D_cls reads from the face. When G asked for
the face's own labels does not return the face, that difference is the difference of two other pictures, and
what they do not share shows up as patches. For the largest face of each ``celeba_wild_sample`` photo this
prints the mean L1 (in [-1, 1] units, as the training losses) between the aligned face x and:

* G(x, c_source): "identity", what ``--lambda-identity`` trains;
* G(x, c_target) for gender (Male flipped from the reading, related attributes on, as the demo) and the gender
  edit's change as the demo makes it (regions on): how far the output strays and how much it changes.

``--sheet`` draws, per photo and model, each picture at TILE px: x, G(x, c_source), G(x, gender), G(x, age),
G(x, smile), and the pasted gender change x3 (gray = none).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from colour_noise import WILD, editor_for, wild_edits  # noqa: E402

from stargan.face import FaceError  # noqa: E402
from stargan.inference import to_uint8  # noqa: E402

TILE = 192  # display size of every picture: models of 64 and 128 px side by side


def outputs(editor, face) -> dict[str, torch.Tensor]:
    """G's pictures for one prepared face (each (3, S, S) in [-1, 1]) and the demo's gender change."""
    x, source = face.tensor[None], face.source[None]
    block = editor.space.block("celeba")
    c_source = editor.space.g_label(source[:, block], "celeba")
    edits = wild_edits(face.labels)
    with torch.no_grad():
        # Editor._g directly: the editor itself never asks G for unchanged labels, it returns x
        return {"x": x[0], "own labels": editor._g(x, c_source, c_source)[0],
                **{name: editor.translate(x, settings, source)[0] for name, settings in edits.items()},
                "change": editor.change(x, edits["gender"], source, regions=editor.regions_for(face)[None])[0]}


def tile(image: torch.Tensor, text: str = "") -> np.ndarray:
    im = Image.fromarray(to_uint8(image[None])[0])
    im = im.resize((TILE, TILE), Image.NEAREST)
    if text:
        ImageDraw.Draw(im).text((2, 2), text, fill=(255, 255, 0))
    return np.asarray(im)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", action="append", help="weights folder or training checkpoint (repeat to compare)")
    p.add_argument("--limit", type=int, default=30, help="wild photos scored (the sheet draws the first --rows)")
    p.add_argument("--sheet", type=Path, help="write a PNG sheet of G's pictures here")
    p.add_argument("--rows", type=int, default=4, help="photos on the sheet")
    args = p.parse_args(argv)
    if not WILD.is_dir():
        raise SystemExit(f"{WILD} not found: this benchmark reads the shared celeba_wild_sample photos")
    photos = sorted(WILD.glob("*.jpg"))[: args.limit]
    rows = []
    print("| model | identity: G(x, own labels) vs x | G(x, gender) vs x | gender change (pasted) |")
    print("|---|---:|---:|---:|")
    for weights in args.weights or [str(ROOT / "weights" / "stargan-studio")]:
        editor, name = editor_for(weights)
        scores = []
        for n, photo in enumerate(photos):
            try:
                face = editor.prepare(photo).faces[0]
            except FaceError:
                continue
            out = outputs(editor, face)
            scores.append([(out["own labels"] - out["x"]).abs().mean().item(),
                           (out["gender"] - out["x"]).abs().mean().item(), out["change"].abs().mean().item()])
            if args.sheet and n < args.rows:
                rows.append(np.concatenate([tile(v * 3 if k == "change" else v, f"{name} {k}" if k == "x" else k)
                                            for k, v in out.items()], 1))
        mean = np.mean(scores, 0)
        print(f"| {name} ({len(scores)} faces) | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} |")
    if args.sheet:
        Image.fromarray(np.concatenate(rows, 0)).save(args.sheet)
        print(f"wrote {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
