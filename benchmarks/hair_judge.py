"""What the attribute judge reads as a hair colour: the ceiling issue 15's hair target is measured against.

    python benchmarks/hair_judge.py [--limit 300] [--weights weights/stargan-studio]

Two measures on CelebA's held-out faces (``stargan.evaluate.load_test_faces``, 128 px):

* recall on real faces: of the test faces labelled with a hair colour, the share the judge reads with it (and
  how often it reads it on the others), with the share of them labelled Young. An edit that makes hair look
  exactly like a real face's of that colour can expect about this success, not more;
* a plain recolour: each of ``--limit`` faces' hair region (``stargan.regions``, as the demo keeps a hair edit)
  moved by ``--amount`` times the difference between the mean hair colour of the test faces with the target
  colour and the face's own, keeping the hair's texture. No G: it shows how much colour alone moves the judge.

The weights folder only supplies the label space and the alignment template of the regions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stargan.domains import CELEBA_ATTRIBUTES, HAIR_COLOURS  # noqa: E402
from stargan.evaluate import DEFAULT_JUDGES, load_test_faces, reads_target  # noqa: E402
from stargan.inference import DEFAULT_WEIGHTS, to_uint8  # noqa: E402
from stargan.judges import ATTRIBUTE_JUDGE, judge_predictions, load_judge  # noqa: E402
from stargan.regions import REGIONS, face_regions  # noqa: E402
from stargan.weights import load_weights  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=300, help="faces recoloured (recall uses every test face)")
    p.add_argument("--amount", type=float, nargs="+", default=[1.0, 2.0],
                   help="multiples of the colour difference to apply")
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--judges", type=Path, default=DEFAULT_JUDGES)
    args = p.parse_args()

    model = load_weights(args.weights, load_discriminator=False)
    judge, _ = load_judge(args.judges, ATTRIBUTE_JUDGE)
    faces = load_test_faces(model.config.label_space, 128, limit=None, datasets=["celeba"])[0]
    truth, read = faces.attributes, judge_predictions(judge, faces.images)
    young = CELEBA_ATTRIBUTES.index("Young")
    print("| hair colour | test faces with it | judge reads it on them | on the others | of them Young |\n"
          "|---|---:|---:|---:|---:|")
    for name in HAIR_COLOURS:
        k = CELEBA_ATTRIBUTES.index(name)
        has = truth[:, k] > 0.5
        print(f"| {name} | {int(has.sum())} of {len(truth)} | {100 * float(read[has, k].mean()):.1f}% | "
              f"{100 * float(read[~has, k].mean()):.1f}% | {100 * float(truth[has, young].mean()):.1f}% |")

    keep = torch.randperm(len(truth), generator=torch.Generator().manual_seed(0))[: args.limit].sort().values
    x, labels = faces.images[keep], truth[keep]
    template = model.template
    hair = torch.from_numpy(np.stack([face_regions(f, template, 128) for f in to_uint8(x)]))
    hair = hair[:, REGIONS.index("hair"):][:, :1]
    own = (x * hair).sum((2, 3)) / hair.sum((2, 3)).clamp_min(1.0)  # each face's mean hair colour (B, 3)
    print(f"\n| recolour ({len(x)} faces) | " + " | ".join(HAIR_COLOURS) + " |\n|---|" + "---:|" * len(HAIR_COLOURS))
    for amount in args.amount:
        cells = []
        for name in HAIR_COLOURS:
            k = CELEBA_ATTRIBUTES.index(name)
            target_colour = own[labels[:, k] > 0.5].mean(0)
            recoloured = (x + amount * hair * (target_colour - own).view(-1, 3, 1, 1)).clamp(-1, 1)
            hits = reads_target(judge, judge_predictions(judge, recoloured), name, torch.ones(len(x)))
            cells.append(f"{100 * float(hits.float().mean()):.1f}%")
        print(f"| {amount:g} x the colour difference | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
