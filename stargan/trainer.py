"""The training loop: the paper's recipe on one or several datasets (mask vector), on CPU or CUDA, with
bf16/fp16 autocast, channels_last, optional torch.compile, DDP through torchrun, checkpoints and logs.

Reproducibility: every random draw of a step (batch order, flips, target labels, interpolation weights) comes
from generators seeded by (seed, step), made for the *global* batch and sliced per rank. A resumed run and a
run on N processes therefore compute what one uninterrupted process computes.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import checkpoint as ckpt
from . import regions
from .augment import augment, parse_policy
from .config import ModelConfig, TrainConfig
from .data import CelebADataset, ExpressionDataset, StepBatchSampler
from .device import autocast, cpu_bf16_speedup, native_bf16, resolve_device, resolve_precision
from .domains import BINARY, CATEGORICAL, HAIR_COLOURS, LabelSpace, celeba, expressions
from .face import CELEBA_HQ_128_TEMPLATE
from .losses import ADV_LOSSES, COLOUR_NOISE_WHERE, PENALTY_OF, d_loss, g_loss
from .models import (
    G_CONDITIONS,
    G_HEADS,
    G_RESIDUAL_INITS,
    build_discriminator,
    build_generator,
    count_parameters,
    load_discriminator_weights,
    load_generator_weights,
)

log = logging.getLogger(__name__)


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistInfo:
        """torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them this is one process."""
        if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
            return cls()
        return cls(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))


# ---- data sources -----------------------------------------------------------------------------------------
CELEBA_BLOCK = "celeba"
EXPRESSION_BLOCK = "rafd"


def build_label_space(cfg: TrainConfig) -> LabelSpace:
    datasets = []
    if cfg.celeba_dir:
        datasets.append(celeba(cfg.celeba_attrs, name=CELEBA_BLOCK))
    if cfg.expression_dirs:
        datasets.append(expressions(name=EXPRESSION_BLOCK))
    if not datasets:
        raise ValueError("no training data: give --celeba-dir and/or --expression-dir")
    return LabelSpace(tuple(datasets))


def build_datasets(cfg: TrainConfig, labels: LabelSpace) -> dict[str, Dataset]:
    """Train datasets by block name, in the label space's order; all data errors surface here."""
    out: dict[str, Dataset] = {}
    for d in labels.datasets:
        if d.name == CELEBA_BLOCK:
            out[d.name] = CelebADataset(cfg.celeba_dir, d, "train", cfg.image_size, cfg.celeba_crop_size,
                                        cfg.celeba_test_size)
        else:
            out[d.name] = ExpressionDataset(cfg.expression_dirs, d, cfg.image_size)
    return out


def model_config(cfg: TrainConfig, labels: LabelSpace) -> ModelConfig:
    return ModelConfig(label_space=labels, image_size=cfg.image_size, g_conv_dim=cfg.g_conv_dim,
                       g_repeat_num=cfg.g_repeat_num, d_conv_dim=cfg.d_conv_dim, d_repeat_num=cfg.d_repeat_num,
                       g_head=cfg.g_head, g_upsample=cfg.g_upsample, g_condition=cfg.g_condition,
                       g_down_num=cfg.g_down_num, d_src_depth=cfg.d_src_depth, d_scales=cfg.d_scales,
                       d_src_trunk=cfg.d_src_trunk)


TARGET_MODES = ("shuffle", "edit")


def check_options(cfg: TrainConfig) -> None:
    """Refuse option combinations that would silently do nothing, before any data is read."""
    if cfg.adv_loss not in ADV_LOSSES:
        raise ValueError(f"--adv-loss {cfg.adv_loss!r}: choose one of {ADV_LOSSES}")
    if cfg.penalty_of not in PENALTY_OF:
        raise ValueError(f"--penalty-of {cfg.penalty_of!r}: choose one of {PENALTY_OF}")
    if cfg.r1_gamma > 0 and cfg.adv_loss == "wgan-gp":
        raise ValueError("--r1-gamma goes with --adv-loss log; WGAN-GP has its own penalty (--lambda-gp)")
    if (cfg.lambda_mask > 0 or cfg.lambda_mask_tv > 0) and cfg.g_head != "attention":
        raise ValueError(f"--lambda-mask/--lambda-mask-tv regularise the attention head's mask; --g-head is "
                         f"{cfg.g_head!r} (choose from {G_HEADS})")
    if cfg.rec_smooth < 0:
        raise ValueError(f"--rec-smooth {cfg.rec_smooth}: 0 (the L1) or a positive width")
    if cfg.g_residual_init not in G_RESIDUAL_INITS:
        raise ValueError(f"--g-residual-init {cfg.g_residual_init!r}: choose one of {G_RESIDUAL_INITS}")
    if cfg.g_residual_init != "zero" and cfg.g_head != "residual":
        raise ValueError(f"--g-residual-init sets the residual head's start; --g-head is {cfg.g_head!r}")
    if cfg.g_condition not in G_CONDITIONS:
        raise ValueError(f"--g-condition {cfg.g_condition!r}: choose one of {G_CONDITIONS}")
    if cfg.target_mode not in TARGET_MODES:
        raise ValueError(f"--target-mode {cfg.target_mode!r}: choose one of {TARGET_MODES}")
    if not 0 <= cfg.hair_target_share <= 1:
        raise ValueError(f"--hair-target-share {cfg.hair_target_share}: a share between 0 and 1")
    if cfg.max_edits < 1:
        raise ValueError(f"--max-edits {cfg.max_edits}: at least 1")
    if not 0 <= cfg.edit_focus_share <= 1:
        raise ValueError(f"--edit-focus-share {cfg.edit_focus_share}: a share between 0 and 1")
    if (cfg.edit_focus or cfg.edit_focus_share) and not (cfg.edit_focus and cfg.edit_focus_share
                                                         and cfg.target_mode == "edit"):
        raise ValueError("--edit-focus and --edit-focus-share go together, with --target-mode edit")
    unknown = [a for a in cfg.edit_focus if a not in cfg.celeba_attrs]
    if unknown:
        raise ValueError(f"--edit-focus {unknown}: not among the trained attributes (--celeba-attrs)")
    if cfg.gp_every < 1:
        raise ValueError(f"--gp-every {cfg.gp_every}: at least 1")
    parse_policy(cfg.diffaug)
    if cfg.teacher and not cfg.celeba_dir:
        raise ValueError("--teacher reads CelebA attributes; it needs --celeba-dir")
    if cfg.colour_noise_where not in COLOUR_NOISE_WHERE:
        raise ValueError(f"--colour-noise-where {cfg.colour_noise_where!r}: choose one of {COLOUR_NOISE_WHERE}")
    if cfg.colour_noise_sigma <= 0:
        raise ValueError(f"--colour-noise-sigma {cfg.colour_noise_sigma}: a blur of more than 0 pixels")
    defaults = TrainConfig()
    if cfg.lambda_colour_noise <= 0 and (cfg.colour_noise_where != defaults.colour_noise_where
                                         or cfg.colour_noise_sigma != defaults.colour_noise_sigma):
        raise ValueError("--colour-noise-sigma/--colour-noise-where shape the colour-noise penalty; set its weight "
                         "with --lambda-colour-noise")
    if cfg.distill_steps < 0:
        raise ValueError(f"--distill-steps {cfg.distill_steps}: 0 (the whole run) or more")
    if not cfg.distill_from and (cfg.distill_steps or cfg.lambda_distill != TrainConfig.lambda_distill):
        raise ValueError("--lambda-distill/--distill-steps shape the copying of a reference G's edits; name the "
                         "reference with --distill-from")
    if cfg.hair_outside_face and not (cfg.celeba_dir and set(cfg.celeba_attrs) & set(HAIR_COLOURS)):
        raise ValueError("--hair-outside-face needs --celeba-dir and at least one hair colour in --celeba-attrs")


def step_generator(seed: int, step: int, source: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step * 16 + source)


def learning_rate(base: float, step: int, cfg: TrainConfig) -> float:
    """Constant, then linear decay to zero over the last ``num_iters_decay`` steps (the paper's schedule)."""
    if cfg.num_iters_decay <= 0:
        return base
    start = cfg.num_iters - cfg.num_iters_decay
    return base if step < start else base * max(0.0, (cfg.num_iters - step) / cfg.num_iters_decay)


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: str | Path | None = None) -> None:
        check_options(cfg)
        self.cfg = cfg
        self.dist = DistInfo.from_env()
        self.device = resolve_device(cfg.device)
        if self.dist.world_size > 1 and not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.dist.local_rank)
                self.device = torch.device("cuda", self.dist.local_rank)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.precision = resolve_precision(cfg.precision, self.device)
        if cfg.precision == "auto" and self.device.type == "cpu" and native_bf16(self.device):
            log.info("precision auto: %s (bf16 ran a convolution %.2fx as fast as fp32 on this CPU)", self.precision,
                     cpu_bf16_speedup())
        if self.precision == "bf16" and not native_bf16(self.device):
            log.warning("bf16 on this %s is emulated and much slower than fp32 (16x per iteration measured on an AVX2 "
                        "CPU); use --precision auto or fp32", self.device.type)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # every batch has the same shape: pick the fastest kernels once
        if cfg.batch_size % self.dist.world_size:
            raise ValueError(f"--batch-size {cfg.batch_size} must be divisible by the {self.dist.world_size} processes")
        torch.manual_seed(cfg.seed)
        self.run_dir = Path(cfg.run_dir)
        self.labels = build_label_space(cfg)
        self.model_config = model_config(cfg, self.labels)
        self.datasets = build_datasets(cfg, self.labels)

        self.G = build_generator(self.model_config).to(self.device)
        if cfg.g_residual_init == "random":
            # A zero last layer passes no gradient to the layers before it: only it learns, and the L1 of the
            # cycle holds it at zero (benchmarks/HISTORY.md, "The residual head's start").
            self.G.main[-1].reset_parameters()
        self.D = build_discriminator(self.model_config).to(self.device)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if cfg.ema_decay > 0 else None
        self.teachers: dict[str, nn.Module] = {}  # by binary dataset: the frozen teacher's logits for its names
        if cfg.teacher:
            from .teacher import BlockTeacher, load_teacher

            teacher = load_teacher(cfg.teacher)
            self.teachers = {d.name: BlockTeacher(teacher, d.names).to(self.device)
                             for d in self.labels.datasets if d.kind == BINARY}
        self.reference = None  # a trained G whose edits this G copies at first (stargan.distill)
        if cfg.distill_from:
            from .distill import load_reference

            self.reference = load_reference(cfg.distill_from, self.labels, self.device)
        self.hair_views: dict[str, tuple[torch.Tensor, list[int]]] = {}  # by dataset: see losses.g_loss
        if cfg.hair_outside_face:
            where = 1.0 - self._template_map(regions.face_core)
            self.hair_views = {d.name: (where, [d.index(n) for n in HAIR_COLOURS if n in d.names])
                               for d in self.labels.datasets if set(d.names) & set(HAIR_COLOURS)}
        # weights of the colour-noise penalty over the image; None: uniform
        self.colour_noise_where = self._template_map(regions.skin_core) if cfg.colour_noise_where == "skin" else None
        if cfg.channels_last:
            for m in (self.G, self.D, self.G_ema):
                if m is not None:
                    m.to(memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(self.G.parameters(), cfg.g_lr, (cfg.beta1, cfg.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), cfg.d_lr, (cfg.beta1, cfg.beta2))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.step = 0
        self.g_updates = 0
        self.wall_time = 0.0
        self.cpu_time = 0.0  # this process's CPU seconds: what recipes are compared by on a shared machine
        # Every command that trained this run, first to last (a resumed run keeps how it started).
        self.commands = [shlex.join(["python", *sys.argv])] if sys.argv and sys.argv[0] else []
        self.initialised_from: dict | None = None
        if resume:
            self._load(resume)
        elif cfg.init_from:
            self._init_from(cfg.init_from)

        # DDP wraps the modules that take gradient steps; the raw modules are what is saved.
        G_train, D_train = self.G, self.D
        if self.dist.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            G_train = nn.parallel.DistributedDataParallel(self.G, device_ids=ids)
            D_train = nn.parallel.DistributedDataParallel(self.D, device_ids=ids)
        if cfg.compile:
            G_train = torch.compile(G_train)
            if cfg.adv_loss != "wgan-gp":  # compiled graphs have no double backward, which the penalty needs
                D_train = torch.compile(D_train)
        self.G_train, self.D_train = G_train, D_train

    # ---- state ----------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "step": self.step, "g_updates": self.g_updates, "wall_time": self.wall_time, "cpu_time": self.cpu_time,
            "commands": self.commands,
            "initialised_from": self.initialised_from,
            "train_config": self.cfg.to_dict(), "model_config": self.model_config.to_dict(),
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict() if self.G_ema is not None else None,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        }

    def _load(self, path: str | Path) -> None:
        state = ckpt.load_checkpoint(path)
        saved = ModelConfig.from_dict(state["model_config"])
        if saved != self.model_config:
            raise ValueError(f"{path} was trained with a different model or data ({saved}); resume with the same "
                             "options as the original run (they are in the run directory's options.json)")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.G_ema is not None and state.get("G_ema") is not None:
            self.G_ema.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.g_updates, self.wall_time = state["step"], state["g_updates"], state.get("wall_time", 0.0)
        self.cpu_time = state.get("cpu_time", 0.0)
        self.commands = state.get("commands", []) + self.commands
        self.initialised_from = state.get("initialised_from")
        torch.set_rng_state(state["rng"]["torch"])
        if torch.cuda.is_available() and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        log.info("resumed from %s at step %d", path, self.step)

    def _init_from(self, source: str) -> None:
        """Fine-tuning: start from a trained weights folder; the step count and the optimisers start afresh."""
        from .weights import load_weights

        loaded = load_weights(source, load_discriminator=True)
        # An image-head G may start an attention-head run, G may gain residual blocks or trade its transposed
        # convolutions for resize-convolutions, the run may train at another image size
        # (models.load_generator_weights, load_discriminator_weights), G may read its labels another way (its
        # first layer's label weights then relearn what they read), and D's real/fake judge may get its own layers
        # (a copy of the shared ones) or a half-resolution judge (a copy of the trained one); nothing else may differ.
        grown = replace(loaded.config, g_head=self.model_config.g_head, image_size=self.model_config.image_size,
                        g_repeat_num=self.model_config.g_repeat_num, g_upsample=self.model_config.g_upsample,
                        g_condition=self.model_config.g_condition, d_src_trunk=self.model_config.d_src_trunk,
                        d_scales=self.model_config.d_scales)
        if grown != self.model_config:
            raise ValueError(f"--init-from {source}: its model ({loaded.config}) differs from this run's "
                             f"({self.model_config}) in more than the head, image size, upsampling, conditioning, "
                             "number of G's residual blocks and D's real/fake layers or scales; use the same widths "
                             "and labels")
        if loaded.discriminator is None:
            raise ValueError(f"--init-from {source}: the folder has no discriminator.safetensors; fine-tuning "
                             "needs a trained D as well as G")
        load_generator_weights(self.G, loaded.generator)
        load_discriminator_weights(self.D, loaded.discriminator)
        if self.G_ema is not None:
            load_generator_weights(self.G_ema, loaded.generator)
        earlier = loaded.provenance or {}
        self.initialised_from = {"source": str(source), **{k: earlier[k] for k in
                                 ("command", "resumed_with", "initialised_from", "how_to_reproduce", "steps",
                                  "g_updates", "wall_time_s", "cpu_time_s", "hardware", "generator") if k in earlier}}
        log.info("initialised G and D from %s (%s steps)", source, earlier.get("steps", "unknown"))

    # ---- data -------------------------------------------------------------------------------------------------
    def _loaders(self) -> dict[str, Iterator]:
        out = {}
        for i, (name, ds) in enumerate(self.datasets.items()):
            sampler = StepBatchSampler(len(ds), self.cfg.batch_size, self.step, self.cfg.num_iters,
                                       self.cfg.seed + 101 * i, self.dist.rank, self.dist.world_size)
            workers = self.cfg.num_workers
            loader = DataLoader(ds, batch_sampler=sampler, num_workers=workers,
                                pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
                                prefetch_factor=4 if workers > 0 else None)
            out[name] = iter(loader)
        return out

    def _global_values(self, values: torch.Tensor) -> torch.Tensor:
        if self.dist.world_size == 1:
            return values
        gathered = [torch.empty_like(values) for _ in range(self.dist.world_size)]
        dist.all_gather(gathered, values)  # tiny: one label row per sample
        return torch.cat(gathered)

    def _all_agree(self, flag: bool) -> bool:
        """True on every process when any process says so: each process's own clock decides a time limit,
        and one process stopping alone would leave the others waiting in their next collective."""
        if self.dist.world_size == 1:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def _template_map(self, make: Callable[..., np.ndarray]) -> torch.Tensor:
        """A map that is the same for every aligned face (stargan.regions), as (1, 1, S, S) on the device."""
        size = self.cfg.image_size
        made = make(self.cfg.template or CELEBA_HQ_128_TEMPLATE, size)
        return torch.from_numpy(made).view(1, 1, size, size).to(self.device)

    # ---- one iteration ----------------------------------------------------------------------------------------
    def train_step(self, source: int, name: str, x: torch.Tensor, values: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, labels = self.cfg, self.labels
        rng = step_generator(cfg.seed, self.step, source)
        n_global = cfg.batch_size
        flip, perm, alpha = torch.rand(n_global, generator=rng) < 0.5, torch.randperm(n_global, generator=rng), \
            torch.rand(n_global, generator=rng)
        local = slice(self.dist.rank * x.size(0), (self.dist.rank + 1) * x.size(0))
        values = values.to(self.device)
        everyone = self._global_values(values)
        if cfg.target_mode == "edit":
            trg_values = labels.random_edits(everyone.cpu(), name, rng, cfg.max_edits, cfg.edit_focus,
                                             cfg.edit_focus_share)
        else:
            trg_values = everyone[perm.to(everyone.device)]
        if cfg.hair_target_share > 0:  # drawn with the step's generator, which lives on the CPU
            trg_values = labels.uniform_hair(trg_values.cpu(), name, rng, cfg.hair_target_share)
        trg_values = trg_values.to(self.device)[local]
        x = x.to(self.device, non_blocking=True)
        x = torch.where(flip[local].to(self.device).view(-1, 1, 1, 1), x.flip(-1), x)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        c_org, c_trg = labels.g_label(values, name).to(self.device), labels.g_label(trg_values, name).to(self.device)
        d_view = None
        if cfg.diffaug:  # its own generator, so the other draws are the same with and without it
            aug_rng = step_generator(cfg.seed, self.step, source + 8)
            d_view = partial(augment, policy=cfg.diffaug, gen=aug_rng)
        metrics: dict[str, torch.Tensor] = {}
        warming_up = self.step < cfg.d_cls_warmup

        # D step: fake from the raw G without gradients (no DDP forward needed).
        fake = None
        if not warming_up:
            with torch.no_grad(), autocast(self.device, self.precision):
                fake = self.G(x, c_trg, source=c_org)
        regularise = self.step % cfg.gp_every == 0
        with autocast(self.device, self.precision):
            loss, terms = d_loss(self.D_train, x, fake, values, labels, name, cfg.adv_loss, cfg.lambda_cls,
                                 cfg.lambda_gp * cfg.gp_every, regularise=regularise, gp_alpha=alpha[local],
                                 grad_scale=self.scaler.get_scale() if self.scaler.is_enabled() else 1.0,
                                 r1_gamma=cfg.r1_gamma * cfg.gp_every, augment=d_view, penalty_of=cfg.penalty_of)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt_d)
        self.scaler.update()
        metrics.update({f"D/{name}/{k}": v for k, v in terms.items()})
        metrics[f"D/{name}/total"] = loss.detach()

        if not warming_up and self.is_g_step():
            # The demo pastes an expression's change as luminance only: its chroma never shows, so no penalty.
            colour_noise_weight = 0.0 if labels.dataset(name).kind == CATEGORICAL else cfg.lambda_colour_noise
            distilling = self.reference is not None and (not cfg.distill_steps or self.step < cfg.distill_steps)
            # G step: D frozen, so no gradients for D's weights are computed at all.
            self.D.requires_grad_(False)
            with autocast(self.device, self.precision):
                distill_target = self.reference.target(x, c_trg, c_org) if distilling else None
                loss, terms = g_loss(self.G_train, self.D, x, c_org, c_trg, trg_values, labels, name, cfg.adv_loss,
                                     cfg.lambda_cls, cfg.lambda_rec, cfg.lambda_mask, cfg.lambda_mask_tv,
                                     self.teachers.get(name), cfg.lambda_teacher, augment=d_view,
                                     hair_view=self.hair_views.get(name), lambda_colour_noise=colour_noise_weight,
                                     colour_noise_sigma=cfg.colour_noise_sigma,
                                     colour_noise_where=self.colour_noise_where,
                                     lambda_identity=cfg.lambda_identity, distill_target=distill_target,
                                     lambda_distill=cfg.lambda_distill, rec_smooth=cfg.rec_smooth)
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt_g)
            self.scaler.update()
            self.D.requires_grad_(True)
            metrics.update({f"G/{name}/{k}": v for k, v in terms.items()})
            metrics[f"G/{name}/total"] = loss.detach()
        return metrics

    def is_g_step(self) -> bool:
        """G trains on every n_critic-th step after D_cls's warm-up."""
        return self.step >= self.cfg.d_cls_warmup and (self.step + 1 - self.cfg.d_cls_warmup) % self.cfg.n_critic == 0

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.G_ema is None:
            return
        # Warm-up: a short run must not be dominated by the random initialisation.
        decay = min(self.cfg.ema_decay, (1 + self.g_updates) / (10 + self.g_updates))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p.detach(), 1 - decay)

    # ---- the loop -----------------------------------------------------------------------------------------------
    def fit(self) -> Path | None:
        cfg = self.cfg
        main = self.dist.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.run_dir / "options.json")
            (self.run_dir / "samples").mkdir(exist_ok=True)
        writer = _tensorboard(self.run_dir) if main else None
        metrics_file = open(self.run_dir / "metrics.jsonl", "a") if main else None  # noqa: SIM115 (closed in finally)
        loaders = self._loaders()
        sample_inputs = self._sample_inputs() if main else None
        progress = _progress(self.step, cfg.num_iters, main)
        pending: dict[str, list[torch.Tensor]] = {}
        start_time = time.time() - self.wall_time
        # --max-minutes bounds this invocation, not the run: a resumed run gets the full limit again.
        leg_start = time.time()
        if cfg.max_minutes:
            log.info("stopping after %g minutes of this invocation (at %s) unless step %d comes first", cfg.max_minutes,
                     time.strftime("%H:%M", time.localtime(leg_start + cfg.max_minutes * 60)), cfg.num_iters)
        cpu_start = time.process_time() - self.cpu_time
        last_export, exported_step = leg_start, None
        stop_reason = "done"
        try:
            while self.step < cfg.num_iters:
                for group in (self.opt_g, self.opt_d):
                    base = cfg.g_lr if group is self.opt_g else cfg.d_lr
                    for pg in group.param_groups:
                        pg["lr"] = learning_rate(base, self.step, cfg)
                for source, name in enumerate(loaders):
                    x, values = next(loaders[name])
                    for k, v in self.train_step(source, name, x, values).items():
                        pending.setdefault(k, []).append(v)
                if self.is_g_step():
                    self.g_updates += 1
                    self._update_ema()
                self.step += 1
                self.wall_time = time.time() - start_time
                self.cpu_time = time.process_time() - cpu_start
                progress.update(1)
                if main and (self.step % cfg.log_every == 0 or self.step == cfg.num_iters):
                    # One host sync per log interval, not per step.
                    row = {k: torch.stack(v).float().mean().item() for k, v in pending.items()}
                    pending.clear()
                    row.update(step=self.step, lr=self.opt_g.param_groups[0]["lr"], time=round(self.wall_time, 2),
                               cpu_time=round(self.cpu_time, 2))
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
                    if writer is not None:
                        for k, v in row.items():
                            if "/" in k:
                                writer.add_scalar(k, v, self.step)
                    progress.set_postfix({k.replace("/total", ""): f"{v:.3g}" for k, v in row.items()
                                          if k.endswith("/total")})
                elif not main:
                    pending.clear()
                if main and cfg.sample_every and self.step % cfg.sample_every == 0:
                    self.save_samples(sample_inputs, self.run_dir / "samples" / f"step_{self.step:08d}.png")
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                # By steps, and by the clock so that a slow machine still has a fresh folder to commit.
                if main and ((cfg.export_every and self.step % cfg.export_every == 0) or (
                        cfg.export_every_minutes and time.time() - last_export >= cfg.export_every_minutes * 60)):
                    self.export(self.run_dir / "export")
                    last_export, exported_step = time.time(), self.step
                if cfg.max_minutes and self._all_agree(time.time() - leg_start > cfg.max_minutes * 60):
                    stop_reason = f"time limit of {cfg.max_minutes} minutes"
                    break
        except KeyboardInterrupt:
            stop_reason = "interrupted"
        finally:
            progress.close()
            if metrics_file:
                metrics_file.close()
            if writer is not None:
                writer.close()
        log.info("training stopped at step %d (%s) after %.0f s", self.step, stop_reason, self.wall_time)
        if not (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0):
            self.save_checkpoint()
        if not main:
            return None
        self.save_samples(sample_inputs, self.run_dir / "samples" / f"step_{self.step:08d}.png")
        folder = self.run_dir / "export"
        if exported_step != self.step:  # the loop may have just exported this very step
            self.export(folder)
        if cfg.push_to_hub:
            from .weights import push_to_hub
            url = push_to_hub(folder, cfg.push_to_hub)
            log.info("pushed to the Hub: %s", url)
        return folder

    def save_checkpoint(self) -> None:
        if self.dist.is_main:
            ckpt.save_checkpoint(self.run_dir, self.step, self.state(), self.cfg.keep_checkpoints)
        if self.dist.world_size > 1:
            dist.barrier()

    # ---- samples and export -------------------------------------------------------------------------------------
    def _sample_inputs(self, per_dataset: int = 4) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        out = []
        for name, ds in self.datasets.items():
            items = [ds[i] for i in range(min(per_dataset, len(ds)))]
            out.append((name, torch.stack([x for x, _ in items]), torch.stack([v for _, v in items])))
        return out

    @torch.no_grad()
    def save_samples(self, inputs: list, path: Path) -> None:
        """A grid: one row per input, the input then one column per single-domain target of every dataset."""
        import torchvision.utils as vutils

        G = self.G_ema if self.G_ema is not None else self.G
        rows = []
        for name, x, values in inputs:
            x = x.to(self.device)
            columns = [x]
            for d in self.labels.datasets:
                base = values if d.name == name else torch.zeros(x.size(0), len(d))
                for _, target in self.labels.single_domain_targets(d.name, base):
                    c_src = self.labels.g_label(base, d.name).to(self.device)
                    with autocast(self.device, self.precision):
                        columns.append(G(x, self.labels.g_label(target, d.name).to(self.device), source=c_src).float())
            rows.append(torch.cat(columns, dim=3))
        grid = torch.cat(rows, dim=2)
        vutils.save_image(grid * 0.5 + 0.5, path, nrow=1, padding=0)

    def provenance(self) -> dict:
        data = {}
        for name, ds in self.datasets.items():
            source = self.cfg.celeba_dir if name == CELEBA_BLOCK else self.cfg.expression_dirs
            data[name] = {"source": source, "train_images": len(ds)}
        device = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else \
            f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
        return {"data": data, "command": self.commands[0] if self.commands else "",
                "resumed_with": self.commands[1:],
                **({"initialised_from": self.initialised_from} if self.initialised_from else {}),
                "steps": self.step, "g_updates": self.g_updates, "batch_size": self.cfg.batch_size,
                "wall_time_s": round(self.wall_time, 1), "cpu_time_s": round(self.cpu_time, 1), "hardware": f"{device} x{self.dist.world_size}",
                "precision": self.precision, "ema": self.G_ema is not None, "train_config": self.cfg.to_dict(),
                "parameters": {"G": count_parameters(self.G), "D": count_parameters(self.D)}}

    def export(self, folder: Path) -> Path:
        """The weights folder (DESIGN decision 4); G is the moving average when one is kept, and the raw G is
        exported beside it (``<folder>_raw``) so evaluation can choose."""
        from .weights import save_weights

        samples = sorted((self.run_dir / "samples").glob("step_*.png"))
        template = self.cfg.template
        for G, target in ((self.G_ema or self.G, folder), (self.G, Path(f"{folder}_raw"))):
            save_weights(target, _plain(G), self.model_config, discriminator=_plain(self.D), template=template,
                         provenance={**self.provenance(), "generator": "ema" if G is self.G_ema else "raw"})
            if samples:
                (target / "sample_grid.png").write_bytes(samples[-1].read_bytes())
            if self.G_ema is None:
                break
        log.info("weights exported to %s", folder)
        return folder


def _plain(module: nn.Module) -> nn.Module:
    """A contiguous (not channels_last) copy for export, so saved tensors have the standard layout."""
    return copy.deepcopy(module).to(memory_format=torch.contiguous_format).float().cpu()


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed; metrics go to metrics.jsonl only")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


class _NoProgress:
    def update(self, n: int) -> None: ...
    def set_postfix(self, *a, **k) -> None: ...
    def close(self) -> None: ...


def _progress(start: int, total: int, enabled: bool):
    if not enabled:
        return _NoProgress()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoProgress()
    return tqdm(total=total, initial=start, unit="it", dynamic_ncols=True, mininterval=5,
                disable=None if sys.stderr.isatty() else False, file=sys.stderr)
