"""Which features the realism measure should use: known answers and a model's edits on every feature set.

For each feature set of stargan.realism (each stage of the attribute judge averaged over the face, its logits, and
the default: stem and second stage over the face's quarters) this measures the share of the gap closed for
answers known in advance, on held-out CelebA faces (six of the headline edits): real target faces in place of
the edit (about +1), the faces unchanged (0), blurred, and with low-frequency colour blotches, visible and faint
(below 0: a person sees them as further from a real face); then the same for a model's edits. A feature set fit
for the measure gets every known answer right.

    python benchmarks/realism_features.py --weights weights/stargan-studio --out benchmarks/realism_features.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stargan.domains import CELEBA_ATTRIBUTES, LabelSpace, celeba  # noqa: E402
from stargan.evaluate import HEADLINE_EDITS, edit_sets, load_test_faces, realism_per_edit  # noqa: E402
from stargan.judges import ATTRIBUTE_JUDGE, DEFAULT_JUDGES, load_judge  # noqa: E402
from stargan.realism import DEFAULT_FEATURES, FEATURE_SETS, blur, colour_blotches, gap_closed, judge_features  # noqa: E402

KNOWN_ANSWER_EDITS = ("to_male", "to_female", "older", "smile_on", "glasses_on", "to_gray")


def known_answers(limit: int, seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    judge, _ = load_judge(DEFAULT_JUDGES, ATTRIBUTE_JUDGE)
    space = LabelSpace((celeba(CELEBA_ATTRIBUTES),))
    faces = load_test_faces(space, 128, limit=None)[0]
    out: dict[str, dict[str, dict[str, float]]] = {}
    gen = torch.Generator().manual_seed(seed)
    for edit in (e for e in HEADLINE_EDITS if e.key in KNOWN_ANSWER_EDITS):
        s_idx, t_idx = edit_sets(edit, faces, CELEBA_ATTRIBUTES)
        half = min(limit, len(t_idx) // 2)  # the target faces in two halves: the reference and the known answer
        s_idx = s_idx[torch.randperm(len(s_idx), generator=gen)[:limit]]
        t_idx = t_idx[torch.randperm(len(t_idx), generator=gen)[: 2 * half]]
        source, target, other_target = faces.images[s_idx], faces.images[t_idx[:half]], faces.images[t_idx[half:]]
        n = min(len(source), len(other_target))
        cases = {"real target faces": (source[:n], other_target[:n]), "unchanged": (source, source),
                 "blurred (sigma 1.5 px at 128)": (source, blur(source, 1.5)),
                 "colour blotches": (source, colour_blotches(source, gen)),
                 "faint colour blotches": (source, colour_blotches(source, gen, strength=0.12))}
        for depth in list(FEATURE_SETS):
            ft = judge_features(judge, target, depth)
            row = {}
            for case, (s, e) in cases.items():
                row[case] = round(gap_closed(judge_features(judge, s, depth), judge_features(judge, e, depth),
                                             ft, seed=seed).gap_closed, 3)
            out.setdefault(edit.title, {})[depth] = row
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=str(ROOT / "weights" / "stargan-studio"))
    p.add_argument("--limit", type=int, default=300, help="faces per set")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "realism_features.json")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    known = known_answers(args.limit)
    model = realism_per_edit(args.weights, limit=args.limit,
                             features=[DEFAULT_FEATURES, *(f for f in FEATURE_SETS if f != DEFAULT_FEATURES)])
    args.out.write_text(json.dumps({"known_answers": known, "model": args.weights, "edits": model}, indent=1) + "\n")
    header = "| case | " + " | ".join(list(FEATURE_SETS)) + " |"
    print(header + "\n|" + " --- |" * (len(list(FEATURE_SETS)) + 1))
    for title, by_depth in known.items():
        for case in next(iter(by_depth.values())):
            print(f"| {title}: {case} | " + " | ".join(f"{by_depth[d][case]:+.2f}" for d in list(FEATURE_SETS)) + " |")
    for r in model["per_edit"].values():
        print(f"| model: {r['title']} | " + " | ".join(
            "n/a" if r["by_features"][d] is None else f"{r['by_features'][d]:+.2f}" for d in list(FEATURE_SETS)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
