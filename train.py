#!/usr/bin/env python
"""Train StarGAN (Choi et al., CVPR 2018) the paper's way; see --help for examples."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

EXAMPLES = """examples:
  # the paper's CelebA model (5 attributes, 128 px, 200k iterations) on whatever device is present
  python train.py --celeba-dir ../shared/data/celeba_hq_128 --run-dir runs/celeba

  # jointly on CelebA (all 40 attributes) and expressions with the mask vector, bf16 on this CPU
  python train.py --celeba-dir ../shared/data/celeba_hq_128 --celeba-attrs all \\
      --expression-dir /work/prepared/expressions_posed/train --expression-dir /work/prepared/expressions/train \\
      --precision bf16 --g-conv-dim 32 --d-conv-dim 32 --run-dir runs/joint

  # continue a run where it stopped; several GPUs; export from a checkpoint; check a config
  python train.py --resume --run-dir runs/joint
  torchrun --nproc-per-node 4 train.py --celeba-dir DATA --precision bf16 --run-dir runs/ddp
  python train.py --export-from runs/joint/checkpoints/step_00010000.pt --out weights/mine
  python train.py --celeba-dir DATA --dry-run
"""

TEMPLATES = ("celeba_hq_128", "celeba_aligned")


def build_parser() -> argparse.ArgumentParser:
    from stargan.config import TrainConfig

    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=argparse.SUPPRESS)
    special = {
        "celeba_attrs": dict(type=str, help="comma-separated CelebA attribute names, or 'all' for the 40"),
        "expression_dirs": dict(type=str, action="append", dest="expression_dirs", metavar="DIR",
                                help="expression folder (class folders named by expression); repeat to merge"),
        "template": dict(type=str, help=f"alignment template stored with the weights: {' or '.join(TEMPLATES)} "
                                        "or ten comma-separated numbers (x,y of eyes, nose, mouth corners)"),
    }
    from stargan.recipes import RECIPES

    for f in dataclasses.fields(TrainConfig):
        if f.name == "recipe":
            continue  # --recipe (below) sets it together with the preset's values
        flag = "--expression-dir" if f.name == "expression_dirs" else "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if f.name in special:
            p.add_argument(flag, **special[f.name])
        elif isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, help=f"(default {default})")
        else:
            kind = {int: int, float: float}.get(type(default), str)
            p.add_argument(flag, type=kind, help=f"(default {default})")
    p.add_argument("--recipe", choices=sorted(RECIPES), help="start from a named preset (stargan/recipes.py); "
                   "flags given here still override it (default paper)")
    p.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                   help="continue from the run directory's latest checkpoint, or from the given one")
    p.add_argument("--dry-run", action="store_true", help="print the resolved options and parameter counts, then exit")
    p.add_argument("--export-from", metavar="CHECKPOINT", help="write a weights folder from a checkpoint and exit")
    p.add_argument("--out", metavar="DIR", help="with --export-from: the weights folder to write")
    p.add_argument("--verbose", action="store_true")
    return p


def parse_template(text: str) -> list[list[float]]:
    from stargan import face

    if text in TEMPLATES:
        return [list(map(float, xy)) for xy in getattr(face, text.upper() + "_TEMPLATE")]
    numbers = [float(v) for v in text.split(",")]
    if len(numbers) != 10:
        raise SystemExit(f"--template needs {' or '.join(TEMPLATES)} or 10 numbers, got {len(numbers)}")
    return [numbers[i:i + 2] for i in range(0, 10, 2)]


def resolve_options(given: dict) -> dict:
    from stargan.domains import CELEBA_ATTRIBUTES
    from stargan.recipes import recipe

    if "celeba_attrs" in given:
        text = given["celeba_attrs"]
        given["celeba_attrs"] = list(CELEBA_ATTRIBUTES) if text == "all" else [a.strip() for a in text.split(",") if a.strip()]
    if "template" in given:
        given["template"] = parse_template(given["template"])
    if "recipe" in given:  # the preset first, the flags over it
        given = {**recipe(given["recipe"]), **given}
    return given


# Options that may change when a run is resumed; everything else must stay as the run started.
RESUMABLE_CHANGES = {"device", "num_workers", "max_minutes", "log_every", "sample_every", "checkpoint_every",
                     "keep_checkpoints", "export_every", "num_iters", "num_iters_decay", "push_to_hub", "compile",
                     "precision"}


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    logging.basicConfig(level=logging.DEBUG if args.pop("verbose", False) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from stargan import checkpoint as ckpt
    from stargan.config import TrainConfig
    from stargan.models import build_discriminator, build_generator, count_parameters
    from stargan.trainer import Trainer, build_label_space, model_config

    resume, dry_run = args.pop("resume", None), args.pop("dry_run", False)
    export_from, out = args.pop("export_from", None), args.pop("out", None)
    given = resolve_options(args)

    if export_from:
        state = ckpt.load_checkpoint(export_from)
        cfg = TrainConfig.from_dict({**state["train_config"], "num_workers": 0, "device": "cpu"})
        trainer = Trainer(cfg, resume=export_from)
        folder = trainer.export(Path(out or Path(cfg.run_dir) / f"export_step_{trainer.step}"))
        print(f"weights written to {folder}")
        return 0

    if resume:
        run_dir = Path(given.get("run_dir", TrainConfig.run_dir))
        path = ckpt.latest_checkpoint(run_dir) if resume == "latest" else Path(resume)
        if path is None:
            raise SystemExit(f"--resume: no checkpoint in {ckpt.checkpoint_dir(run_dir)}; start the run without --resume")
        saved = ckpt.load_checkpoint(path)["train_config"]
        changed = {k for k, v in given.items() if k not in RESUMABLE_CHANGES and saved.get(k) != v}
        if changed:
            raise SystemExit(f"--resume cannot change {sorted(changed)}: they define the run. Allowed changes: "
                             f"{sorted(RESUMABLE_CHANGES)}")
        cfg = TrainConfig.from_dict({**saved, **given})
    else:
        cfg = TrainConfig.from_dict(given)
        path = None

    if dry_run:
        labels = build_label_space(cfg)
        mc = model_config(cfg, labels)
        print(json.dumps(cfg.to_dict(), indent=2))
        print(f"label space: G label {labels.g_dim}, D_cls {labels.d_dim}: "
              + "; ".join(f"{d.name} ({d.kind}): {', '.join(d.names)}" for d in labels.datasets))
        print(f"parameters: G {count_parameters(build_generator(mc)):,}  D {count_parameters(build_discriminator(mc)):,}")
        return 0

    trainer = Trainer(cfg, resume=path)
    folder = trainer.fit()
    if folder is not None:
        print(f"weights written to {folder}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
