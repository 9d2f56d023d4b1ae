"""Named training recipes: each a set of TrainConfig values (DESIGN, "Recipes"). ``train.py --recipe NAME``
starts from one; flags given on the command line still override it. The name is recorded in the run's options
(``TrainConfig.recipe``) and so in the weights' provenance.

* ``paper``: the paper's recipe exactly (TrainConfig's defaults): 5 attributes, 128 px, full width, WGAN-GP,
  n_critic 5, another face's labels as targets.
* ``shipped-v1``: what trained the first release model on two CPU cores: all 40 attributes, 64 px, G 32/4,
  D 32/5, the paper's losses with the penalty on every 2nd D step and n_critic 2, bf16 where the CPU computes it
  natively (precision "auto"; fp32 elsewhere, where emulated bf16 is 16x slower).
* ``cpu``: the recipe that learnt the most per CPU hour in the study (benchmarks/HISTORY.md, "Recipe study"):
  shipped-v1 plus a frozen teacher classifier (``benchmarks/teacher``, stargan.teacher) on G's output. The other
  candidates (residual or attention head, resize upsampling, log loss + R1 with a G step every step, 1-3 edits as
  targets, DiffAugment, D_cls warm-up, STGAN's difference labels, 96 px, a deeper G) stay options; none beat
  shipped-v1 or the cpu recipe in the study's runs (benchmarks/HISTORY.md, "Recipe study" and "Size, depth,
  upsampling, loss and the D_cls warm-up, each alone").
* ``line128``: the model line meant to draw what 64 px cannot (stubble, a glasses frame, teeth): 128 px, G's
  residual blocks at 16x16 (three stride-2 stages, width 32, 4 blocks, resize upsampling; about the paper G's
  cost at 64 px) and a D whose real/fake map is 8x8 (each cell a patch of the face, where the paper's 2x2 map
  lets a cheek-sized colour patch pass). G's head is the residual one (y = x + change), its last layer started at
  PyTorch's default rather than zero: a zero last layer passes no gradient to the layers before it, and the
  cycle's L1 holds it at zero (benchmarks/HISTORY.md, "The residual head's start"). No teacher (a classifier's
  reward for painting an attribute's cues is what made the 64 px model's edits colour patches). Each target is
  one edit of the face's own labels, three quarters of them on the headline controls, with G reading the
  difference of labels: against another face's 40 labels a change that blurs D's reading of every attribute pays
  whatever the target. D's real/fake judge has its own layers (the 40-attribute classification loss sets shared
  ones, and the map then cannot see a painted patch), the non-saturating log loss with R1 on each image's mean
  score (on the 8x8 map's sum the penalty held the judge to 1/64 of its slope and it never left chance) and D
  at 4x G's learning rate; the classification weight is the paper's 1 (at 1/8 G stayed the identity). G changes
  faces, still as patches a person would not believe (benchmarks/HISTORY.md, "The judge's penalty on the 8x8
  map's sum"). Exports every 250 steps (15-20 minutes on a core with fast bf16) and at the latest every 25
  minutes (250 steps take about 55 in fp32 on a Xeon without AMX), so that a session can commit on its rhythm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .domains import CELEBA_ATTRIBUTES
from .face import CELEBA_HQ_128_TEMPLATE

STUDY_TEACHER = Path(__file__).resolve().parents[1] / "benchmarks" / "teacher"

_SMALL_CPU_MODEL: dict[str, Any] = {
    "celeba_attrs": list(CELEBA_ATTRIBUTES), "image_size": 64, "g_conv_dim": 32, "g_repeat_num": 4,
    "d_conv_dim": 32, "d_repeat_num": 5, "precision": "auto",
    "template": [list(xy) for xy in CELEBA_HQ_128_TEMPLATE],
}

RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    "shipped-v1": {**_SMALL_CPU_MODEL, "gp_every": 2, "n_critic": 2},
    "cpu": {**_SMALL_CPU_MODEL, "gp_every": 2, "n_critic": 2, "teacher": str(STUDY_TEACHER), "lambda_teacher": 1.0},
    "line128": {"celeba_attrs": list(CELEBA_ATTRIBUTES), "image_size": 128, "g_conv_dim": 32, "g_repeat_num": 4,
                "g_down_num": 3, "g_upsample": "resize", "g_head": "residual", "g_residual_init": "random",
                "g_condition": "difference", "d_conv_dim": 32, "d_repeat_num": 5, "d_src_depth": 4,
                "d_src_trunk": "own", "adv_loss": "log", "r1_gamma": 1.0, "penalty_of": "image", "d_lr": 4e-4,
                "gp_every": 2, "n_critic": 2, "lambda_cls": 1.0, "target_mode": "edit", "max_edits": 1,
                "edit_focus": ["Male", "Young", "Smiling", "Eyeglasses", "Black_Hair"], "edit_focus_share": 0.75,
                "precision": "auto",
                "export_every": 250, "export_every_minutes": 25, "checkpoint_every": 250, "sample_every": 250,
                "template": [list(xy) for xy in CELEBA_HQ_128_TEMPLATE]},
}


SUMMARIES = {
    "paper": "the paper exactly: 5 attributes, 128 px, width 64, WGAN-GP, n_critic 5, 200k steps",
    "shipped-v1": "the first release model's: all 40 attributes, 64 px, G 32/4, D 32/5, WGAN-GP, bf16 where native",
    "cpu": "the most learnt per CPU hour (benchmarks/HISTORY.md, Recipe study): shipped-v1 plus a frozen teacher "
           "classifier (benchmarks/teacher) on G's output",
    "line128": "the 128 px line: G 32/4 with its blocks at 16x16 (3 stages, resize upsampling, residual head started "
               "at random, reading label differences), D 32/5 with an 8x8 real/fake map on its own layers, the log "
               "loss with R1 on each image's score and D at 4e-4, one edit per target, three quarters of them on the "
               "headline controls, bf16 where native and measured faster",
}


def describe(name: str) -> str:
    return SUMMARIES[name]


def recipe(name: str) -> dict[str, Any]:
    """A copy of the named recipe's TrainConfig values."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return {k: (list(v) if isinstance(v, list) else v) for k, v in RECIPES[name].items()}
