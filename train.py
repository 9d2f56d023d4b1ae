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
  # the CPU recipe on this machine's data: all 40 attributes + 8 expressions, 64 px (see --recipe)
  python train.py --recipe cpu --celeba-dir ../shared/data/celeba_hq_128 \\
      --expression-dir ../prepared/expressions_posed.soft/train --expression-dir ../prepared/expressions.soft/train

  # the paper's CelebA model (5 attributes, 128 px, 200k iterations) on whatever device is present
  python train.py --celeba-dir ../shared/data/celeba_hq_128 --run-dir runs/celeba

  # continue a run where it stopped; fine-tune a weights folder; several GPUs; export; check a config
  python train.py --resume --run-dir runs/joint --max-minutes 60
  python train.py --recipe cpu --celeba-dir DATA --init-from weights/stargan-studio --run-dir runs/more
  torchrun --nproc-per-node 4 train.py --celeba-dir DATA --precision bf16 --run-dir runs/ddp
  python train.py --export-from runs/joint/checkpoints/step_00010000.pt --out weights/mine
  python train.py --recipe cpu --celeba-dir DATA --dry-run
"""

TEMPLATES = ("celeba_hq_128", "celeba_aligned")

# Every TrainConfig field's group and help: what it does, its unit, when to change it. tests/test_training.py
# checks that no field is missing, so a new option cannot arrive without its help.
GROUPS = {
    "data": "data (what to train on)",
    "model": "model (the networks; recorded in the weights' config.json)",
    "recipe": "recipe (losses, targets and optimisation; --recipe sets many of these at once)",
    "run": "run (device, speed, logging, checkpoints, time limit)",
    "export": "export (the weights folder and the Hub)",
}
OPTION_HELP: dict[str, tuple[str, str]] = {
    "celeba_dir": ("data", "a CelebA-format folder (images/, list_attr_celeba.txt, optional list_eval_partition.txt)"),
    "celeba_attrs": ("data", "comma-separated CelebA attribute names to learn, or 'all' for the 40 (default: the "
                             "paper's 5: hair colours, Male, Young)"),
    "celeba_crop_size": ("data", "centre crop in pixels before resizing: 178 for img_align_celeba; leave unset for "
                                 "pre-cropped squares such as celeba_hq_128"),
    "celeba_test_size": ("data", "images held out for testing when the folder has no list_eval_partition.txt"),
    "expression_dirs": ("data", "an expression folder (one folder per expression name, aligned with "
                                "stargan.prepare); repeat to merge several into the one 8-name block"),
    "image_size": ("model", "G and D's input side in pixels (the paper: 128; the CPU recipe: 64); cost grows "
                            "with its square"),
    "g_conv_dim": ("model", "G's width: channels of its first layer (the paper: 64)"),
    "g_repeat_num": ("model", "G's depth: residual blocks (the paper: 6)"),
    "d_conv_dim": ("model", "D's width: channels of its first layer (the paper: 64)"),
    "d_repeat_num": ("model", "D's depth: stride-2 layers (the paper: 6); image size must divide by 2**depth"),
    "g_head": ("model", "G's output: image (the paper), residual (y = x + change, starts as the identity) or "
                        "attention (GANimation's colour + mask)"),
    "g_residual_init": ("model", "the residual head's last convolution at the start: zero (G is the identity, and "
                                 "no other layer gets a gradient until it moves) or random (PyTorch's default "
                                 "initialisation: G starts as the face plus noise, and every layer learns at once)"),
    "g_upsample": ("model", "G's upsampling: deconv (the paper's transposed convolutions) or resize "
                            "(nearest x2 then 3x3 convolution, no checkerboard)"),
    "g_down_num": ("model", "G's stride-2 stages down and up (the paper: 2); 3 puts its residual blocks at an "
                            "eighth of the image side, a 128 px G at the cost of the paper's at 64 px"),
    "d_src_depth": ("model", "D's stride-2 layers before its real/fake map (0: all, the paper's 2x2 map at 128 px; "
                             "4: an 8x8 map of face patches)"),
    "d_scales": ("model", "D's real/fake judges: 1 (the paper) or 2 (a second one on the image at half resolution, "
                          "as pix2pixHD's multi-scale D)"),
    "d_src_trunk": ("model", "D's real/fake map on layers shared with its classifier (the paper) or on its own: "
                             "shared, the classification loss over 40 attributes sets them and the map cannot see a "
                             "painted patch"),
    "g_condition": ("model", "G's label input: target (the paper) or difference (STGAN: target minus the face's "
                             "own labels, so zero means no change)"),
    "adv_loss": ("recipe", "adversarial loss: wgan-gp (the paper) or log (non-saturating; with --r1-gamma as in "
                           "StarGAN v2)"),
    "lambda_cls": ("recipe", "weight of the domain classification loss (the paper: 1)"),
    "lambda_rec": ("recipe", "weight of the cycle reconstruction loss (the paper: 10)"),
    "rec_smooth": ("recipe", "0: the cycle loss is the L1 (the paper); > 0: Charbonnier, sqrt(d^2 + s^2) - s, with "
                             "this s (e.g. 0.01 of the [-1, 1] range): the L1 for large differences, no pull back "
                             "to zero for tiny ones, where the L1 holds a residual G at the identity"),
    "lambda_gp": ("recipe", "weight of WGAN-GP's gradient penalty (the paper: 10)"),
    "r1_gamma": ("recipe", "R1 penalty weight gamma on real images, for --adv-loss log (StarGAN v2: 1); 0 = off"),
    "gp_every": ("recipe", "apply the penalty (GP or R1) every k-th D step, scaled by k (lazy regularisation); "
                           "1 = every step"),
    "penalty_of": ("recipe", "what the penalty (GP or R1) differentiates: map (the sum of D's real/fake cells, the "
                             "original code) or image (each image's mean cell, the adversarial loss's own scale; "
                             "with an 8x8 map, map holds the critic's slope to 1/64 of that)"),
    "lambda_mask": ("recipe", "attention head: weight of the mask's mean, which keeps the change local"),
    "lambda_mask_tv": ("recipe", "attention head: weight of the mask's total variation, which keeps it smooth"),
    "target_mode": ("recipe", "training targets: shuffle (another face's labels, the paper: ~8 attributes change "
                              "at once) or edit (1 to --max-edits changes, as people use the sliders)"),
    "max_edits": ("recipe", "with --target-mode edit: the most attributes one target changes (a hair colour "
                            "counts as one)"),
    "edit_focus": ("recipe", "with --target-mode edit: comma-separated attributes (a hair colour stands for all) "
                             "that --edit-focus-share of the edits are drawn from, so the controls people use most "
                             "get more than 1/40 of the practice each"),
    "edit_focus_share": ("recipe", "with --edit-focus: the share of targets edited there (the rest: any attribute)"),
    "hair_target_share": ("recipe", "share of attribute targets whose hair colour is drawn uniformly from the "
                                    "model's hair colours (the rare gray as often as black); 0 = the targets' own"),
    "diffaug": ("recipe", "DiffAugment policy for every image D sees: comma-separated translation, cutout, "
                          "color; empty = off"),
    "d_cls_warmup": ("recipe", "steps that first train D's classifier on real faces alone, so G's classification "
                               "signal means something from its first step; 0 = off"),
    "teacher": ("recipe", "folder of a frozen attribute classifier (python -m stargan.teacher) whose reading of "
                          "G's output joins G's loss; never an evaluation judge"),
    "lambda_teacher": ("recipe", "weight of the teacher's classification loss, with --teacher (default scale: "
                                 "the same as lambda_cls)"),
    "lambda_colour_noise": ("recipe", "weight of the colour noise of G's change as the demo pastes it (the "
                                      "high-frequency chroma of G(x, c_trg) - G(x, c_org)) on attribute batches; expression "
                                      "batches go free, as the demo pastes their change as luminance only; 0 = off"),
    "colour_noise_sigma": ("recipe", "with --lambda-colour-noise: chroma finer than a Gaussian blur of this many "
                                     "pixels counts as noise (larger also counts larger patches)"),
    "colour_noise_where": ("recipe", "with --lambda-colour-noise: where the noise counts: image (everywhere) or "
                                     "skin (the face core less the eyes and mouth, whose colours may change sharply)"),
    "lambda_identity": ("recipe", "weight of the identity loss |G(x, c_org) - x| (CycleGAN's): G asked for a face's "
                                  "own labels returns that face, so the change the demo pastes is not the "
                                  "difference of two blurred faces; 0 = off (the paper)"),
    "distill_from": ("recipe", "a trained G's weights folder (any image size, the same labels) whose edits G copies "
                               "at first: L1 to the reference's change, G(x, c_trg) - G(x, c_org) at its size, "
                               "upsampled onto the face (a distillation warm start)"),
    "lambda_distill": ("recipe", "with --distill-from: weight of the L1 between G's output and the reference's edit"),
    "distill_steps": ("recipe", "with --distill-from: the steps the copying lasts; 0 = the whole run"),
    "hair_outside_face": ("recipe", "D_cls and the teacher read G's hair colours from G's change outside the face "
                                    "core only (as the demo's edit regions show it), so a tinted face earns no "
                                    "hair colour"),
    "batch_size": ("recipe", "images per step per dataset, over all processes (the paper: 16)"),
    "num_iters": ("recipe", "training steps in total (the paper: 200,000)"),
    "num_iters_decay": ("recipe", "the last steps over which the learning rates fall linearly to 0 (the paper: "
                                  "100,000); 0 = constant"),
    "g_lr": ("recipe", "G's Adam learning rate (the paper: 1e-4)"),
    "d_lr": ("recipe", "D's Adam learning rate (the paper: 1e-4)"),
    "beta1": ("recipe", "Adam beta1 (the paper: 0.5)"),
    "beta2": ("recipe", "Adam beta2 (the paper: 0.999)"),
    "n_critic": ("recipe", "D steps per G step (the paper: 5)"),
    "ema_decay": ("recipe", "decay of the moving average of G's weights that is exported; 0 = export the raw G"),
    "init_from": ("recipe", "a weights folder or Hub id to start G, D and G's average from (fine-tuning with "
                            "fresh optimisers; same widths and labels; the image size may change and G may gain "
                            "residual blocks, which start as the identity)"),
    "device": ("run", "auto (CUDA when present), cpu, cuda or cuda:N"),
    "precision": ("run", "fp32, bf16 (CUDA, and CPUs with AVX512-BF16 or AMX), fp16 (CUDA only) or auto (bf16 "
                          "where the device computes it natively and, on a CPU, measures faster; else fp32)"),
    "channels_last": ("run", "NHWC memory layout, usually faster with bf16"),
    "compile": ("run", "torch.compile G (and D without the gradient penalty); measure before relying on it"),
    "num_workers": ("run", "data loading processes; 0 loads in the training process (its CPU time then counts "
                           "in the run's cpu_time)"),
    "seed": ("run", "seed of every random draw; a run with the same seed and options repeats exactly"),
    "deterministic": ("run", "force deterministic kernels (slower; for debugging differences)"),
    "run_dir": ("run", "folder for options.json, metrics.jsonl, samples, checkpoints and the export"),
    "log_every": ("run", "steps between metric rows in metrics.jsonl and TensorBoard"),
    "sample_every": ("run", "steps between sample grids (0 = only at the end)"),
    "checkpoint_every": ("run", "steps between resumable checkpoints (0 = only at the end)"),
    "keep_checkpoints": ("run", "checkpoints kept; older ones are deleted"),
    "max_minutes": ("run", "stop cleanly (checkpoint and export) after this many wall-clock minutes of this "
                           "invocation (a resumed run gets them afresh); 0 = no limit"),
    "export_every": ("export", "steps between exports of the weights folder to RUN_DIR/export (0 = at the end)"),
    "export_every_minutes": ("export", "also export once this many wall-clock minutes passed since the last export "
                                       "(a commit rhythm on slow machines; 0 = off)"),
    "push_to_hub": ("export", "a Hugging Face Hub repo id to push the final weights folder to"),
    "template": ("export", f"alignment template stored with the weights: {' or '.join(TEMPLATES)} or ten "
                           "comma-separated numbers (x,y of eyes, nose, mouth corners in [0, 1])"),
}


def build_parser() -> argparse.ArgumentParser:
    from stargan.augment import POLICIES
    from stargan.config import TrainConfig
    from stargan.losses import ADV_LOSSES, COLOUR_NOISE_WHERE, PENALTY_OF
    from stargan.models import D_SRC_TRUNKS, G_CONDITIONS, G_HEADS, G_RESIDUAL_INITS, G_UPSAMPLES
    from stargan.recipes import RECIPES, describe
    from stargan.trainer import TARGET_MODES

    presets = "\n".join(f"  {name:<12} {describe(name)}" for name in RECIPES)
    p = argparse.ArgumentParser(
        description=f"{__doc__}\n\npresets (--recipe NAME; flags given with it still override it):\n{presets}",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=argparse.SUPPRESS)
    p.add_argument("--recipe", choices=sorted(RECIPES), help="start from a named preset (above); default: paper")
    groups = {key: p.add_argument_group(title) for key, title in GROUPS.items()}
    special = {
        "celeba_attrs": dict(type=str), "edit_focus": dict(type=str),
        "expression_dirs": dict(type=str, action="append", dest="expression_dirs", metavar="DIR"),
        "template": dict(type=str),
        "g_head": dict(choices=G_HEADS), "g_upsample": dict(choices=G_UPSAMPLES),
        "g_residual_init": dict(choices=G_RESIDUAL_INITS),
        "g_condition": dict(choices=G_CONDITIONS), "d_src_trunk": dict(choices=D_SRC_TRUNKS),
        "adv_loss": dict(choices=ADV_LOSSES), "penalty_of": dict(choices=PENALTY_OF),
        "target_mode": dict(choices=TARGET_MODES), "precision": dict(choices=("fp32", "bf16", "fp16", "auto")),
        "diffaug": dict(metavar="|".join(POLICIES)), "colour_noise_where": dict(choices=COLOUR_NOISE_WHERE),
    }
    for f in dataclasses.fields(TrainConfig):
        if f.name == "recipe":
            continue  # --recipe sets it together with the preset's values
        group, text = OPTION_HELP[f.name]
        flag = "--expression-dir" if f.name == "expression_dirs" else "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if f.name in special:
            shown = f" (default {default})" if "choices" in special[f.name] else ""
            groups[group].add_argument(flag, help=text + shown, **special[f.name])
        elif isinstance(default, bool):
            groups[group].add_argument(flag, action=argparse.BooleanOptionalAction, help=f"{text} (default {default})")
        else:
            kind = {int: int, float: float}.get(type(default), str)
            shown = "unset" if default is None else repr(default) if default == "" else default
            groups[group].add_argument(flag, type=kind, help=f"{text} (default {shown})")
    actions = p.add_argument_group("actions")
    actions.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                         help="continue from the run directory's latest checkpoint, or from the given one")
    actions.add_argument("--dry-run", action="store_true",
                         help="print the resolved options and parameter counts, then exit")
    actions.add_argument("--export-from", metavar="CHECKPOINT", help="write a weights folder from a checkpoint and exit")
    actions.add_argument("--out", metavar="DIR", help="with --export-from: the weights folder to write")
    actions.add_argument("--verbose", action="store_true", help="debug logging")
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
    if "edit_focus" in given:
        given["edit_focus"] = [a.strip() for a in given["edit_focus"].split(",") if a.strip()]
    if "template" in given:
        given["template"] = parse_template(given["template"])
    if "recipe" in given:  # the preset first, the flags over it
        given = {**recipe(given["recipe"]), **given}
    return given


# Options that may change when a run is resumed; everything else must stay as the run started.
RESUMABLE_CHANGES = {"device", "num_workers", "max_minutes", "log_every", "sample_every", "checkpoint_every",
                     "keep_checkpoints", "export_every", "export_every_minutes", "num_iters", "num_iters_decay",
                     "push_to_hub", "compile", "precision"}


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
