#!/usr/bin/env python
"""Success against CPU hours for the paper's recipe and the shipped model's: the release line's curve.

    python benchmarks/release_curve.py --out benchmarks/release_curve.png

The points are the recipe study's (``benchmarks/study/*.json``, written by ``recipe_study.py evaluate``: the same
held-out faces, scored as a user sees the edit, lone flips). The shipped model was trained in stages, on machines
whose CPU time per step differs 2-3x, so the x axis is CPU hours on one machine, the one that ran the paper recipe
and release stage 3 (2 Zen 4 cores with AVX512-BF16, 2026-12-02): those two count their own recorded CPU time;
a stage run elsewhere counts its steps at that machine's CPU seconds per step for the same recipe
(``SHIPPED_V1_CPU_S_PER_STEP`` before stage 3, stage 3's own rate after it). Only the labels both models know are
drawn: the paper's model has 5 (three hair colours, Male, Young).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "benchmarks" / "study"

# The shipped-v1 recipe on this machine: the fine-tune control's 1,069 steps took 29.2 CPU minutes
# (benchmarks/study/finetune_shipped_control.json).
SHIPPED_V1_CPU_S_PER_STEP = 29.25 * 60 / 1069
STAGES_1_2_STEPS = 2750 + 7283  # the first release model (weights card, how_to_reproduce)

PANELS = (("hair colour (mean of black, blond, brown)", ("Black_Hair", "Blond_Hair", "Brown_Hair")),
          ("Male", ("Male",)), ("Young", ("Young",)))


def points(name: str) -> list[dict]:
    return json.loads((STUDY / f"{name}.json").read_text())["points"]


def own_hours(doc_points: list[dict], start_minutes: float) -> list[float]:
    return [(p["cpu_minutes"] - start_minutes) / 60 for p in doc_points]


def scratch_curve() -> tuple[list[float], list[dict]]:
    """The shipped recipe from scratch: the study's run, its steps at SHIPPED_V1_CPU_S_PER_STEP."""
    scratch = points("study_shipped")
    return [p["step"] * SHIPPED_V1_CPU_S_PER_STEP / 3600 for p in scratch], scratch


def release_curve(continuations: list[str]) -> tuple[list[float], list[dict]]:
    """The shipped model from release stage 3 on: stages 1-2's steps first (not evaluated along the way)."""
    offset = STAGES_1_2_STEPS * SHIPPED_V1_CPU_S_PER_STEP / 3600
    stage3 = json.loads((STUDY / "release3.json").read_text())
    xs = [offset + h for h in own_hours(stage3["points"], stage3["start_cpu_minutes"])]
    ys = list(stage3["points"])
    last = stage3["points"][-1]
    teacher_s_per_step = (last["cpu_minutes"] - stage3["start_cpu_minutes"]) * 60 / last["step"]
    for spec in continuations:  # later stages ran on other machines: count their steps at stage 3's rate
        offset = xs[-1]
        name, _, until = spec.partition(":")  # NAME:STEP: only up to STEP, where the next continuation forked
        later = [p for p in points(name) if not until or p["step"] <= int(until)]
        xs += [offset + p["step"] * teacher_s_per_step / 3600 for p in later[1:]]  # [0] repeats the start
        ys += later[1:]
    return xs, ys


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "release_curve.png")
    p.add_argument("--paper-run", default="paper_recipe", help="the paper recipe's study points")
    p.add_argument("--continue", dest="continuations", nargs="*", default=[],
                   help="study runs that continued the shipped model after release3, in order; NAME:STEP "
                        "draws a run only up to the step the next one started from")
    args = p.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper = points(args.paper_run)
    curves = {"paper recipe (128 px, width 64, 5 labels)": ([p["cpu_minutes"] / 60 for p in paper], paper),
              "shipped recipe from scratch (64 px, width 32, 40 labels + 8 expressions)": scratch_curve(),
              "shipped model, release stage 3 on (after stages 1-2's 10,033 steps)": release_curve(args.continuations)}
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), sharex=True)
    colours = ("tab:blue", "tab:orange", "tab:orange")
    for ax, (title, names) in zip(axes, PANELS):
        for (label, (xs, ps)), colour in zip(curves.items(), colours):
            ax.plot(xs, [100 * sum(p["success"][n] for n in names) / len(names) for p in ps], marker="o",
                    label=label, color=colour, markerfacecolor="white" if "release" in label else colour)
        ax.set_title(title)
        ax.set_xlabel("training CPU hours (Zen 4 with AVX512-BF16)")
        ax.set_ylabel("success %")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="center right")
    fig.suptitle("Success on held-out faces (the face plus G's change) against training CPU hours")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
