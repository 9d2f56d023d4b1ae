#!/usr/bin/env python
"""The 128 px line's curve: each headline edit's realism (and success) against the CPU hours its weights cost.

    python benchmarks/line_curve.py score RUN_NAME WEIGHTS_FOLDER... [--limit 150] [--update-card]
    python benchmarks/line_curve.py plot [--out benchmarks/line_curve.png]

``score`` measures weights folders (snapshots of a run's exports) with ``stargan.evaluate.realism_per_edit`` on the
same seeded held-out faces and adds them, by run name and step, to ``benchmarks/line_curve.json``. The CPU hours
of a folder are its own run's and every run it was initialised from (the weights' provenance), so a fine-tune
continues its parent's curve. ``plot`` draws one panel per edit group (gender, age, smile, glasses, hair), one
line per run, and a dashed line at the shipped model's value where the JSON has it (run name "shipped").
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CURVE = ROOT / "benchmarks" / "line_curve.json"

PANELS = (("to male", "to_male"), ("to female", "to_female"), ("younger", "younger"), ("older", "older"),
          ("smile", "smile_on"), ("no smile", "smile_off"), ("glasses on", "glasses_on"),
          ("hair colours (mean of 4)", ("to_black", "to_blond", "to_brown", "to_gray")))


def cpu_hours(provenance: dict) -> float:
    """CPU hours of this run and of every run it was initialised from (0 where the shipped model has none)."""
    total, stage = 0.0, provenance
    while stage:
        total += stage.get("cpu_time_s", 0.0) or 0.0
        stage = stage.get("initialised_from")
    return total / 3600


def load_curve(path: Path = CURVE) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"points": []}


def score(run: str, folders: list[Path], limit: int, path: Path = CURVE, update_card: bool = False) -> None:
    from stargan.evaluate import realism_per_edit
    from stargan.evaluate import update_card as write_card
    from stargan.weights import read_config

    for folder in folders:
        provenance = read_config(folder / "config.json")[2]
        realism = realism_per_edit(str(folder), limit=limit)
        if update_card:  # the same numbers on the folder's card, so a shipped folder needs no second scoring
            realism["command"] = shlex.join(["python", "benchmarks/line_curve.py", "score", run, str(folder), "--limit",
                                             str(limit), "--update-card"])
            write_card(folder, {**(provenance.get("evaluation") or {}), "realism": realism})
        point = {"run": run, "folder": str(folder), "step": provenance.get("steps"),
                 "initialised_from": (provenance.get("initialised_from") or {}).get("source"),
                 "cpu_hours": round(cpu_hours(provenance), 3), "faces_per_set": realism["faces_per_set"],
                 "edits": {k: {"realism": v["gap_closed"], "low": v["low"], "high": v["high"],
                               "success": v["success"]} for k, v in realism["per_edit"].items()}}
        with open(path.with_suffix(".lock"), "w") as lock:  # scores of other folders may finish beside this one
            fcntl.flock(lock, fcntl.LOCK_EX)
            curve = load_curve(path)
            curve["points"] = [p for p in curve["points"] if (p["run"], p["step"]) != (run, point["step"])] + [point]
            path.write_text(json.dumps(curve, indent=1) + "\n")
        print(f"{run} step {point['step']} ({point['cpu_hours']:.2f} CPU h): " + ", ".join(
            f"{k} {v['realism']:+.2f}/{v['success']:.0%}" for k, v in point["edits"].items()), flush=True)


def value(point: dict, keys, field: str = "realism") -> float:
    keys = (keys,) if isinstance(keys, str) else keys
    return sum(point["edits"][k][field] for k in keys) / len(keys)


def plot(out: Path, path: Path = CURVE) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = load_curve(path)["points"]
    runs = sorted({p["run"] for p in points if p["run"] not in ("shipped", "start")})
    shipped = next((p for p in points if p["run"] == "shipped"), None)

    def parent(mine: list[dict]) -> list[dict]:
        """The point a fine-tuning run started from: the one scored at the folder it was initialised from,
        the latest before it (a folder such as weights/stargan-studio-128 holds different weights over time)."""
        first = min(mine, key=lambda p: p["cpu_hours"])
        earlier = [p for p in points if first.get("initialised_from") and p["folder"] == first["initialised_from"]
                   and p["cpu_hours"] < first["cpu_hours"]]
        return [max(earlier, key=lambda p: p["cpu_hours"])] if earlier else []
    fig, axes = plt.subplots(2, 4, figsize=(16, 7), sharex=True)
    for ax, (title, keys) in zip(axes.flat, PANELS):
        for run in runs:
            mine = [p for p in points if p["run"] == run]
            mine = sorted(parent(mine) + mine, key=lambda p: p["cpu_hours"])
            ax.plot([p["cpu_hours"] for p in mine], [value(p, keys) for p in mine], "o-", label=run)
        if shipped:
            ax.axhline(value(shipped, keys), ls="--", c="gray", label="shipped 64 px model")
        ax.axhline(0.5, ls=":", c="green", lw=0.8)
        ax.set_title(title)
        ax.set_ylim(-1.3, 1.1)
    for ax in axes[-1]:
        ax.set_xlabel("CPU hours (all stages)")
    for ax in axes[:, 0]:
        ax.set_ylabel("realism (share of the gap closed)")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("128 px line: realism per headline edit against CPU hours (dotted: the 0.5 target)")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score", help="measure weights folders and add them to the curve")
    s.add_argument("run", help="the run's name on the curve ('shipped': the dashed reference; 'start': a folder "
                               "scored only as the first point of the runs initialised from it, not drawn alone); "
                               "a run initialised from a scored folder is drawn from that folder's point")
    s.add_argument("folders", type=Path, nargs="+")
    s.add_argument("--limit", type=int, default=150, help="real faces per set (keep one value along a curve)")
    s.add_argument("--update-card", action="store_true", help="also write the realism into each folder's card")
    p = sub.add_parser("plot", help="draw the curve")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "line_curve.png")
    args = parser.parse_args()
    if args.cmd == "score":
        score(args.run, args.folders, args.limit, update_card=args.update_card)
    else:
        plot(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
