#!/usr/bin/env python
"""Recipe study: success against CPU minutes for training runs, from their checkpoints.

    python benchmarks/recipe_study.py evaluate RUN_DIR [RUN_DIR ...] [--every 400] [--limit 200]
    python benchmarks/recipe_study.py plot --out benchmarks/recipe_study.png
    python benchmarks/recipe_study.py table          # the points as a Markdown table
    python benchmarks/recipe_study.py fooling CHECKPOINT   # did G learn to fool its teacher? judge vs teacher
                                                       # (a checkpoint or a weights folder)
    python benchmarks/recipe_study.py dcls MODEL [MODEL ...]   # D_cls's accuracy on held-out faces

``evaluate`` scores every ``--every``-th checkpoint of each run (G's moving average, as exported; a run started
``--init-from`` weights also gets those weights as step 0, its CPU minutes counted on from theirs) with
``stargan.evaluate`` on the same held-out faces and key labels, scored as a user sees the edit (the face plus G's
change) with lone flips (as every point before 2026-12-03), then Male and Smiling with their related attributes
(``success_related``, as the demo edits them), and appends the points to ``benchmarks/study/<run name>.json``;
checkpoints already there are skipped, so it can be run again while the runs go on. G's change is scored wherever
G makes it, as every point before 2026-12-03; ``--regions`` scores it kept to the demo's edit regions
(``stargan.regions``) instead, into ``benchmarks/study/<run name>+regions.json`` (drawn as its own curve). CPU minutes are the training process's own CPU time
(``time.process_time``, recorded by the trainer), so runs that shared the machine compare fairly.
``plot`` draws every run found in that folder, one panel per measure.
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

from stargan import checkpoint as ckpt  # noqa: E402
from stargan.config import ModelConfig, TrainConfig  # noqa: E402
from stargan.domains import HAIR_COLOURS, RELATED_ATTRIBUTES  # noqa: E402
from stargan.evaluate import evaluate_model  # noqa: E402
from stargan.judges import DEFAULT_JUDGES  # noqa: E402
from stargan.models import build_discriminator, build_generator  # noqa: E402
from stargan.weights import LoadedModel  # noqa: E402

STUDY = ROOT / "benchmarks" / "study"
KEY_LABELS = (*HAIR_COLOURS, "Male", "Young", "Smiling", "Eyeglasses", "happy", "surprised")
PANELS = (("hair colour (mean of 4)", HAIR_COLOURS), ("Male", ("Male",)), ("Young", ("Young",)),
          ("Smiling", ("Smiling",)), ("Eyeglasses", ("Eyeglasses",)), ("expressions (happy, surprised)",
                                                                        ("happy", "surprised")))


def load_checkpoint_model(path: Path) -> tuple[LoadedModel, dict]:
    """G's moving average (or G) and D of a training checkpoint, as a weights folder would give them."""
    state = ckpt.load_checkpoint(path)
    config = ModelConfig.from_dict(state["model_config"])
    G, D = build_generator(config), build_discriminator(config)
    G.load_state_dict(state["G_ema"] if state.get("G_ema") is not None else state["G"])
    D.load_state_dict(state["D"])
    for m in (G, D):
        m.eval().requires_grad_(False)
    template = TrainConfig.from_dict(state["train_config"]).template
    info = {k: state.get(k) for k in ("step", "g_updates", "wall_time", "cpu_time")}
    return LoadedModel(G, D, config, template, {}, path), info


def start_cpu_minutes(options: dict, given: float | None) -> float:
    """CPU minutes the run's starting weights had already trained (``--init-from``): ``given``, else the
    weights' recorded ``cpu_time_s``, else 0 (logged)."""
    if given is not None or not options.get("init_from"):
        return given or 0.0
    from stargan.weights import read_config
    provenance = read_config(Path(options["init_from"]) / "config.json")[2]
    if "cpu_time_s" in provenance:
        return provenance["cpu_time_s"] / 60
    logging.warning("%s records no CPU time: give --start-cpu-minutes; counting from 0", options["init_from"])
    return 0.0


def evaluate_runs(runs: list[Path], every: int, limit: int, labels: tuple[str, ...], judges: Path,
                  start_minutes: float | None = None, regions: bool = False) -> None:
    """Score the run's checkpoints; a run started ``--init-from`` weights also gets its start as step 0, and
    its CPU minutes count from the minutes those weights had trained."""
    STUDY.mkdir(parents=True, exist_ok=True)
    for run in runs:
        out = STUDY / f"{run.name}{'+regions' if regions else ''}.json"
        options = json.loads((run / "options.json").read_text())
        doc = json.loads(out.read_text()) if out.exists() else {"run": str(run), "options": options, "points": [],
                                                                "regions": regions}
        if "start_cpu_minutes" not in doc:  # read once: the starting weights folder may since have moved
            doc["start_cpu_minutes"] = start_cpu_minutes(options, start_minutes)
        done = {p["step"] for p in doc["points"]}
        todo = [(int(p.stem.split("_")[-1]), p) for p in ckpt.list_checkpoints(run)]
        if options.get("init_from"):  # the starting weights folder, scored as it is
            todo.insert(0, (0, Path(options["init_from"])))
        for step, path in todo:
            if step in done or step % every:
                continue
            model, info = load_checkpoint_model(path) if path.is_file() else \
                (path, {"step": 0, "g_updates": 0, "wall_time": 0.0, "cpu_time": 0.0})
            # lone flips, as every earlier point; then the labels with related attributes as the demo edits them
            report = evaluate_model(model, judges, limit=limit, labels=labels, rec_limit=0, grid_faces=0,
                                    related=False, regions=regions)
            per = report.evaluation["per_label"]
            followed = sorted({name for name, _ in RELATED_ATTRIBUTES} & set(labels))
            related = evaluate_model(model, judges, limit=limit, labels=followed, rec_limit=0, grid_faces=0,
                                     related=True, regions=regions).evaluation["per_label"] if followed else {}
            doc["points"].append({**info, "cpu_minutes": round(doc["start_cpu_minutes"] + info["cpu_time"] / 60, 2),
                                  "success": {n: m["success"] for n, m in per.items()},
                                  "success_related": {n: m["success"] for n, m in related.items()},
                                  "preservation": {n: m["preservation"] for n, m in per.items()},
                                  "summary": report.evaluation["summary"], "faces": report.evaluation["test_faces"]})
            doc["points"].sort(key=lambda p: p["step"])
            out.write_text(json.dumps(doc, indent=1) + "\n")
            logging.info("%s step %d (%.1f CPU min): %s", run.name, step, info["cpu_time"] / 60,
                         {n: m["success"] for n, m in per.items()})


def plot(out: Path, runs: list[str] | None = None, x: str = "cpu", heading: str = "") -> None:
    """One panel per measure, one curve per run, against training CPU minutes or steps (``x="steps"``:
    fair between runs of the same per-step cost measured on different machines, whose CPU minutes differ)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = [json.loads(p.read_text()) for p in sorted(STUDY.glob("*.json"))]
    docs = [d for d in docs if d["points"] and (not runs or Path(d["run"]).name in runs)]
    fig, axes = plt.subplots(2, 4, figsize=(18, 8), sharex=True)
    panels = [*PANELS, ("preservation (mean)", None)]
    for ax, (title, names) in zip(axes.flat, panels):
        for d in docs:
            xs = [p["cpu_minutes"] if x == "cpu" else p["step"] for p in d["points"]]
            if names is None:
                ys = [100 * sum(p["preservation"].values()) / len(p["preservation"]) for p in d["points"]]
            else:
                ys = [100 * sum(p["success"][n] for n in names) / len(names) for p in d["points"]]
            ax.plot(xs, ys, marker="o", label=_name(d))
        ax.set_title(title)
        ax.set_ylabel("success %" if names else "%")
        ax.grid(alpha=0.3)
    axes.flat[-1].axis("off")
    axes.flat[0].legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("training CPU minutes" if x == "cpu" else "training steps")
    fig.suptitle(heading or "Recipe study: success on held-out faces (the face plus G's change) against training "
                 + ("CPU time" if x == "cpu" else "steps"))
    fig.tight_layout()
    fig.savefig(out, dpi=80)


@torch.inference_mode()
def fooling(path: Path, limit: int, labels: tuple[str, ...]) -> str:
    """Whether G learnt to fool the teacher: on the same edits (the face plus G's change), how often the teacher
    and the judge each read the target. A G that fools its teacher scores far higher with it than with the
    judge, which never took part in training."""
    import torch.nn.functional as F

    from stargan.evaluate import _user_view, load_test_faces
    from stargan.inference import Editor
    from stargan.judges import ATTRIBUTE_JUDGE, load_judge
    from stargan.teacher import load_teacher

    if (path / "config.json").is_file():  # a weights folder: its provenance says how long it trained
        from stargan.weights import load_weights
        model = load_weights(path)
        trained = f"{model.provenance.get('steps')} steps in its last run, {model.provenance.get('hardware')}"
    else:
        model, info = load_checkpoint_model(path)
        trained = f"step {info['step']}, {info['cpu_time'] / 60:.1f} CPU min"
    editor = Editor(model)
    judge, _ = load_judge(DEFAULT_JUDGES, ATTRIBUTE_JUDGE)
    teacher = load_teacher(ROOT / "benchmarks" / "teacher")
    space = model.config.label_space
    d = next(d for d in space.datasets if d.kind == "binary")
    faces = load_test_faces(space, 128, limit=limit, datasets=[d.name])[0]
    size = model.config.image_size
    x = F.interpolate(faces.images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    source = editor.read_labels(x)
    rows = [f"{path} ({trained}), {len(x)} held-out faces:", "",
            "| target | judge reads it | teacher reads it |", "|---|---:|---:|"]
    for name, target in space.single_domain_targets(d.name, faces.values):
        if name not in labels:
            continue
        wanted = target[:, d.index(name)]
        edited = _user_view(editor, faces.images, x, source, name, wanted)
        reads = {}
        for who, clf in (("judge", judge), ("teacher", teacher)):
            pred = clf.read(edited)[0][:, clf.names.index(name)]
            reads[who] = 100 * float((pred == (wanted > 0.5).float()).float().mean())
        rows.append(f"| {name} | {reads['judge']:.1f}% | {reads['teacher']:.1f}% |")
    return "\n".join(rows)


@torch.inference_mode()
def d_cls_accuracy(paths: list[Path], celeba_root: Path, limit: int) -> str:
    """How well each model's D_cls reads the 40 CelebA attributes of held-out faces (the first ``limit`` of the
    test split): what the D_cls warm-up is for, beside the majority baseline of the same faces."""
    from torch.utils.data import Subset

    from stargan.data import CelebADataset
    from stargan.judges import binary_accuracy, dataset_tensors
    from stargan.weights import load_weights

    rows = ["| model | D_cls mean accuracy | majority baseline | Male | Young | Smiling | Eyeglasses | hair (4) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for path in paths:
        model = load_checkpoint_model(path)[0] if path.is_file() else load_weights(path, load_discriminator=True)
        space = model.config.label_space
        labels = space.dataset("celeba")
        test = CelebADataset(celeba_root, labels, "test", image_size=model.config.image_size)
        x, y = dataset_tensors(Subset(test, range(min(limit, len(test)))))
        logits = torch.cat([model.discriminator(x[i: i + 64])[1][:, space.block("celeba")] for i in range(0, len(x), 64)])
        acc = binary_accuracy((logits > 0).float(), y, labels.names)
        majority = binary_accuracy((y.mean(0, keepdim=True) > 0.5).float().expand_as(y), y, labels.names)
        key = [acc[n] for n in ("Male", "Young", "Smiling", "Eyeglasses")]
        hair = sum(acc[n] for n in HAIR_COLOURS) / len(HAIR_COLOURS)
        rows.append(f"| {path} | {100 * sum(acc.values()) / len(acc):.1f} | "
                    f"{100 * sum(majority.values()) / len(majority):.1f} | "
                    + " | ".join(f"{100 * a:.1f}" for a in key) + f" | {100 * hair:.1f} |")
    return "\n".join(rows)


def _name(doc: dict) -> str:
    return Path(doc["run"]).name + (" +regions" if doc.get("regions") else "")


def table(runs: list[str] | None = None) -> str:
    """Markdown: one row per evaluated checkpoint, runs in turn; Male and Smiling as lone flips, and in brackets
    with their related attributes (as the demo edits them) where the point has them."""
    rows = ["| run | step | G steps | CPU min | hair (4) | Male | Young | Smiling | Eyeglasses | happy, surprised "
            "| preservation |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for path in sorted(STUDY.glob("*.json")):
        doc = json.loads(path.read_text())
        name = _name(doc)
        if runs and Path(doc["run"]).name not in runs:
            continue
        for p in doc["points"]:
            cells = []
            for _, names in PANELS:
                cell = f"{100 * sum(p['success'][n] for n in names) / len(names):.1f}"
                if len(names) == 1 and names[0] in p.get("success_related", {}):  # as the demo edits it
                    cell += f" ({100 * p['success_related'][names[0]]:.1f})"
                cells.append(cell)
            keep = 100 * sum(p["preservation"].values()) / len(p["preservation"])
            rows.append(f"| {name} | {p['step']} | {p['g_updates']} | {p['cpu_minutes']:.1f} | "
                        + " | ".join(cells) + f" | {keep:.1f} |")
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("evaluate")
    e.add_argument("runs", nargs="+", type=Path)
    e.add_argument("--every", type=int, default=400, help="evaluate checkpoints whose step is a multiple of this")
    e.add_argument("--limit", type=int, default=200, help="held-out faces per dataset")
    e.add_argument("--labels", default=",".join(KEY_LABELS))
    e.add_argument("--judges", type=Path, default=DEFAULT_JUDGES)
    e.add_argument("--start-cpu-minutes", type=float, help="CPU minutes the --init-from weights had trained "
                   "(default: their recorded cpu_time_s)")
    e.add_argument("--regions", action="store_true", help="score G's change kept to the demo's edit regions")
    pl = sub.add_parser("plot")
    pl.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "recipe_study.png")
    pl.add_argument("--runs", nargs="*", help="run names to draw (default: all in benchmarks/study)")
    pl.add_argument("--x", choices=("cpu", "steps"), default="cpu", help="x axis: CPU minutes or steps")
    pl.add_argument("--title", default="")
    fo = sub.add_parser("fooling", help="judge vs teacher on the same edits of one checkpoint")
    fo.add_argument("checkpoint", type=Path)
    fo.add_argument("--limit", type=int, default=300)
    fo.add_argument("--labels", default=",".join(n for n in KEY_LABELS if n not in ("happy", "surprised")))
    dc = sub.add_parser("dcls", help="D_cls's accuracy on held-out CelebA faces (checkpoints or weights folders)")
    dc.add_argument("models", nargs="+", type=Path)
    dc.add_argument("--celeba-dir", type=Path, default=ROOT.parent / "shared" / "data" / "celeba_hq_128")
    dc.add_argument("--limit", type=int, default=1000)
    tb = sub.add_parser("table")
    tb.add_argument("--runs", nargs="*", help="run names to list (default: all in benchmarks/study)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("stargan").setLevel(logging.WARNING)
    torch.set_num_threads(1)
    if args.cmd == "evaluate":
        evaluate_runs(args.runs, args.every, args.limit, tuple(args.labels.split(",")), args.judges,
                      args.start_cpu_minutes, args.regions)
    elif args.cmd == "fooling":
        print(fooling(args.checkpoint, args.limit, tuple(args.labels.split(","))))
    elif args.cmd == "dcls":
        print(d_cls_accuracy(args.models, args.celeba_dir, args.limit))
    elif args.cmd == "plot":
        plot(args.out, args.runs, args.x, args.title)
    else:
        print(table(args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
