"""How much colour noise a model's gender, age and smile edits paint on real photos: the blotches seen by eye
(green and yellow patches, purple lips), as a number.

    python benchmarks/colour_noise.py --weights A --weights B [--limit 30]
    python benchmarks/colour_noise.py --weights RUN/checkpoints/step_00000400.pt   # a training checkpoint's G

For the largest face of each ``celeba_wild_sample`` photo, each edit (Male and Young flipped from what the model
reads, Smiling set; related attributes and regions on, as the demo makes them) gives G's change at the model's
size. Its chroma (YCbCr Cb and Cr of the change, 0..255 units) is split into a smooth part (a Gaussian blur of
2 model pixels) and the rest, as the training penalty ``--lambda-colour-noise`` splits it (stargan.colour); the
table gives the mean magnitude of each over the face core (stargan.regions), and of the rest at a 4-pixel blur
too ("patches"): the green and yellow patches a few pixels wide that a 2-pixel blur counts as smooth.
Make-up coming off or skin paling is smooth colour; rainbow noise is the 2-pixel rest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from recipe_study import load_checkpoint_model  # noqa: E402

from stargan.colour import chroma_parts  # noqa: E402
from stargan.face import FaceError  # noqa: E402
from stargan.inference import Editor  # noqa: E402
from stargan.regions import face_core  # noqa: E402

WILD = ROOT.parent / "shared" / "data" / "celeba_wild_sample"


def magnitudes(change: torch.Tensor, core: np.ndarray) -> tuple[float, float, float]:
    """Mean |smooth chroma|, |the rest| and |the rest at a 4-pixel blur| of a change (3, S, S) in [-1, 1] units,
    in 0..255 units over ``core``."""
    weight = torch.from_numpy(core / core.sum())
    mean = lambda part: float((part[0] * 127.5).norm(dim=0).mul(weight).sum())  # noqa: E731
    smooth, rest = chroma_parts(change[None], 2.0)
    return mean(smooth), mean(rest), mean(chroma_parts(change[None], 4.0)[1])


def editor_for(weights: str) -> tuple[Editor, str]:
    """An fp32 editor for a weights folder or a training checkpoint (its G's moving average), and a short name."""
    path = Path(weights)
    model = load_checkpoint_model(path)[0] if path.is_file() else weights
    return Editor(model, precision="fp32"), path.name if path.is_dir() else f"{path.parents[1].name} {path.stem}"


def wild_edits(read: dict[str, float]) -> dict[str, dict[str, float]]:
    """The gender, age and smile edits of a face whose labels read ``read``: Male and Young flipped, Smiling set."""
    return {"gender": {"Male": 0.0 if read["Male"] > 0.5 else 1.0},
            "age": {"Young": 0.0 if read["Young"] > 0.5 else 1.0}, "smile": {"Smiling": 1.0}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", action="append", required=True, help="weights folder or training checkpoint "
                   "(its G's moving average; repeat to compare)")
    p.add_argument("--photos", type=Path, default=WILD)
    p.add_argument("--limit", type=int, default=30)
    args = p.parse_args()
    photos = sorted(q for q in args.photos.iterdir() if q.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.limit]
    print("| model | edit | smooth chroma | colour noise | patches (4 px) | photos |\n|---|---|---:|---:|---:|---:|")
    for weights in args.weights:
        editor, label = editor_for(weights)
        core = face_core(editor.template, editor.image_size)
        parts: dict[str, list[tuple[float, float, float]]] = {"gender": [], "age": [], "smile": []}
        for photo in photos:
            try:
                prepared = editor.prepare(photo)
            except FaceError:  # no usable face: the demo would refuse the photo too
                continue
            face = prepared.faces[0]
            for name, settings in wild_edits(face.labels).items():
                change = editor.change(face.tensor[None], settings, face.source[None],
                                       regions=editor.regions_for(face)[None])[0]
                parts[name].append(magnitudes(change, core))
        for name, values in parts.items():
            smooth, noise, patches = np.mean(values, axis=0)
            print(f"| {label} | {name} | {smooth:.2f} | {noise:.2f} | {patches:.2f} | {len(values)} |")


if __name__ == "__main__":
    main()
