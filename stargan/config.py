"""Configuration dataclasses with a JSON round trip."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .domains import LabelSpace, celeba

CONFIG_FORMAT_VERSION = 1


def _check_fields(cls: type, data: dict[str, Any], what: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {what}(s) {sorted(unknown)}; known: {sorted(known)}")


@dataclass
class ModelConfig:
    """Architecture and label space: everything needed to build G and D (DESIGN decision 1)."""

    label_space: LabelSpace = field(default_factory=lambda: LabelSpace((celeba(),)))
    image_size: int = 128
    g_conv_dim: int = 64
    g_repeat_num: int = 6
    d_conv_dim: int = 64
    d_repeat_num: int = 6
    g_head: str = "image"  # image (the paper) | residual | attention (models.Generator)
    g_upsample: str = "deconv"  # deconv (the paper) | resize
    g_condition: str = "target"  # target (the paper) | difference (STGAN: target minus source labels)
    g_down_num: int = 2  # G's stride-2 stages down and up (the paper: 2; 3 puts its blocks at 16x16 for 128 px)
    d_src_depth: int = 0  # D's layers before its real/fake map (0: all, the paper's 2x2 map at 128 px)
    d_scales: int = 1  # real/fake judges: 1 (the paper) or 2 (another at half resolution, pix2pixHD)
    d_src_trunk: str = "shared"  # the real/fake map's layers: shared with the classifier (the paper) | own

    @property
    def g_label_dim(self) -> int:
        return self.label_space.g_dim

    @property
    def d_label_dim(self) -> int:
        return self.label_space.d_dim

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["label_space"] = self.label_space.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        _check_fields(cls, data, "model config field")
        data = dict(data)
        if "label_space" in data:
            data["label_space"] = LabelSpace.from_dict(data["label_space"])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))


@dataclass
class TrainConfig:
    """The training recipe. Defaults are the paper's (Choi et al. 2018, section 4 and appendix)."""

    recipe: str = "paper"  # the named preset these values started from (stargan/recipes.py)
    # data: a CelebA-format folder and/or expression folders (class folders named by expression)
    celeba_dir: str | None = None
    celeba_attrs: list[str] = field(default_factory=lambda: ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"])
    celeba_crop_size: int | None = None  # 178 for img_align_celeba; None for pre-cropped squares
    celeba_test_size: int = 2000  # held-out images when list_eval_partition.txt is absent
    expression_dirs: list[str] = field(default_factory=list)  # merged into one 8-name block
    # architecture
    image_size: int = 128
    g_conv_dim: int = 64
    g_repeat_num: int = 6
    d_conv_dim: int = 64
    d_repeat_num: int = 6
    g_head: str = "image"  # image (the paper) | residual | attention
    g_residual_init: str = "zero"  # residual head's last convolution: zero (G starts as the identity) | random
    g_upsample: str = "deconv"  # deconv (the paper) | resize
    g_condition: str = "target"  # target (the paper) | difference (STGAN: G reads target minus source labels)
    g_down_num: int = 2  # G's stride-2 stages down and up (the paper: 2)
    d_src_depth: int = 0  # D's layers before its real/fake map (0: all, the paper)
    d_scales: int = 1  # real/fake judges: 1 (the paper) or 2 (another at half resolution)
    d_src_trunk: str = "shared"  # the real/fake map's layers: shared with the classifier (the paper) | own
    # losses
    adv_loss: str = "wgan-gp"  # wgan-gp (the paper) | log (non-saturating; with r1_gamma, StarGAN v2's)
    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    rec_smooth: float = 0.0  # 0: the cycle's L1 (the paper) | > 0: Charbonnier of this width (no kink at zero)
    lambda_gp: float = 10.0
    r1_gamma: float = 0.0  # R1 on real images with the log loss (StarGAN v2 uses 1)
    gp_every: int = 1  # apply the regulariser (GP or R1) on every k-th D step, scaled by k; 1 = the paper
    penalty_of: str = "map"  # what GP/R1 differentiate: the real/fake map's sum (the original) | each image's mean
    lambda_mask: float = 0.0  # attention head: weight of the mask's mean (GANimation)
    lambda_mask_tv: float = 0.0  # attention head: weight of the mask's total variation
    # targets and D's view
    target_mode: str = "shuffle"  # shuffle: another face's labels (the paper) | edit: 1 to max_edits changes
    max_edits: int = 3
    edit_focus: list[str] = field(default_factory=list)  # attributes that edit_focus_share of the edits draw from
    edit_focus_share: float = 0.0  # with target_mode edit: share of targets edited in edit_focus's attributes
    hair_target_share: float = 0.0  # share of attribute targets whose hair colour is drawn uniformly (rare gray too)
    diffaug: str = ""  # DiffAugment policy for every image D sees, e.g. "translation,cutout"; "" = off
    d_cls_warmup: int = 0  # steps that train D_cls on real faces only, before adversarial training
    teacher: str | None = None  # a frozen attribute classifier's folder (stargan.teacher) read on G's output
    lambda_teacher: float = 1.0  # weight of the teacher's classification loss (with --teacher)
    lambda_colour_noise: float = 0.0  # weight of the fine chroma of G(x, c_trg) - G(x, c_org), attribute batches only
    colour_noise_sigma: float = 2.0  # chroma finer than this Gaussian blur (pixels at image_size) counts as noise
    colour_noise_where: str = "image"  # image: everywhere | skin: the face core less eyes and mouth (stargan.regions)
    lambda_identity: float = 0.0  # weight of |G(x, c_org) - x|: G returns a face asked for its own labels
    distill_from: str | None = None  # a trained G's weights folder whose edits G copies at first (stargan.distill)
    lambda_distill: float = 10.0  # weight of the L1 between G's output and the reference's edit
    distill_steps: int = 0  # steps the copying lasts (0: the whole run)
    hair_outside_face: bool = False  # D_cls and the teacher read G's hair colours with the face core kept as it was
    # optimisation
    batch_size: int = 16
    num_iters: int = 200_000
    num_iters_decay: int = 100_000
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 5
    ema_decay: float = 0.999  # 0 disables the moving average of G
    init_from: str | None = None  # weights folder or Hub repo id to start G, D and G's average from (fresh optimisers)
    # speed
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16 | fp16 | auto (bf16 where native and, on a CPU, measured faster)
    channels_last: bool = True
    compile: bool = False
    num_workers: int = 2
    seed: int = 1234
    deterministic: bool = False
    # bookkeeping
    run_dir: str = "runs/stargan"
    log_every: int = 10
    sample_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    export_every: int = 0  # 0: export the weights folder only at the end
    export_every_minutes: float = 0.0  # also export once this much wall time passed since the last export; 0 = off
    max_minutes: float = 0.0  # stop (checkpoint, export) after this wall time of this invocation; 0 = no limit
    push_to_hub: str | None = None
    template: list[list[float]] | None = None  # alignment template stored in the exported config.json

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        _check_fields(cls, data, "training option")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))
