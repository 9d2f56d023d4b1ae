"""StarGAN's losses: adversarial (WGAN-GP or the log loss), gradient penalty, domain classification and
reconstruction, combined with the paper's weights into ``d_loss`` and ``g_loss``.

Options beyond the paper (each off by default): R1 on real images with the non-saturating log loss (StarGAN v2),
GANimation's attention-mask regularisers, a frozen teacher classifier's loss on G's output, a penalty on the colour
noise of G's change, and an augmentation of every image D sees (``stargan.augment``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .colour import chroma_parts
from .domains import BINARY, LabelSpace

ADV_LOSSES = ("wgan-gp", "log")
COLOUR_NOISE_WHERE = ("image", "skin")
# What D's penalty (GP or R1) differentiates: "map", the sum of the real/fake map's cells (the original code's;
# with the paper's 2x2 map the per-image critic is held to a slope of 1/4), or "image", each image's mean cell,
# the quantity the adversarial loss averages: its slope is then held to 1 whatever the map's size, as in
# WGAN-GP's and R1's papers. An 8x8 map under "map" holds the loss's critic to 1/64 of that slope, and R1 on the
# sum of 64 cells is thousands of times stronger than on one logit (benchmarks/HISTORY.md).
PENALTY_OF = ("map", "image")


def penalised_critic(src: torch.Tensor, penalty_of: str = "map") -> torch.Tensor:
    """What D's penalty differentiates (PENALTY_OF), from its real/fake map ``src``."""
    if penalty_of not in PENALTY_OF:
        raise ValueError(f"unknown penalty_of {penalty_of!r}; choose one of {PENALTY_OF}")
    return src if penalty_of == "map" else src.flatten(1).mean(1)


def adversarial_d(real_src: torch.Tensor, fake_src: torch.Tensor, kind: str = "wgan-gp") -> torch.Tensor:
    """D's adversarial loss (to minimise) from its real/fake maps on real and generated images."""
    if kind == "wgan-gp":
        return fake_src.float().mean() - real_src.float().mean()
    if kind == "log":  # -log D(x) - log(1 - D(G(x))), computed stably from logits
        return F.softplus(-real_src.float()).mean() + F.softplus(fake_src.float()).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; choose one of {ADV_LOSSES}")


def adversarial_g(fake_src: torch.Tensor, kind: str = "wgan-gp") -> torch.Tensor:
    """G's adversarial loss; the log loss is the non-saturating -log D(G(x))."""
    if kind == "wgan-gp":
        return -fake_src.float().mean()
    if kind == "log":
        return F.softplus(-fake_src.float()).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; choose one of {ADV_LOSSES}")


def interpolate(real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
    """Random points on the lines between real and fake samples, ready for the gradient penalty."""
    if alpha is None:
        alpha = torch.rand(real.size(0), device=real.device)
    alpha = alpha.to(real.device, real.dtype).view(-1, 1, 1, 1)
    return (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)


def gradient_penalty(critic_out: torch.Tensor, x_hat: torch.Tensor, grad_scale: float = 1.0) -> torch.Tensor:
    """WGAN-GP: mean over samples of (||d critic(x_hat) / d x_hat||_2 - 1)^2.

    ``grad_scale`` is the fp16 GradScaler's scale: the output is scaled before differentiation (so small
    gradients survive fp16) and the gradient unscaled after, as PyTorch's AMP guide does for penalties.
    """
    (grad,) = torch.autograd.grad(critic_out.float().sum() * grad_scale, x_hat, create_graph=True)
    norm = (grad.float() / grad_scale).flatten(1).norm(2, dim=1)
    return ((norm - 1) ** 2).mean()


def r1_penalty(real_src: torch.Tensor, real: torch.Tensor, grad_scale: float = 1.0) -> torch.Tensor:
    """R1 (Mescheder et al., ICML 2018): mean over samples of ||d D_src(x) / d x||^2 on real images; the caller
    weighs it by gamma / 2."""
    (grad,) = torch.autograd.grad(real_src.float().sum() * grad_scale, real, create_graph=True)
    return (grad.float() / grad_scale).square().flatten(1).sum(1).mean()


def mask_regularisers(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """GANimation's attention-mask terms: its mean (keep the change local; without it the mask saturates to 1
    and G paints a whole new face) and its total variation (a smooth mask)."""
    mask = mask.float()
    tv = (mask[:, :, 1:] - mask[:, :, :-1]).square().mean() + (mask[:, :, :, 1:] - mask[:, :, :, :-1]).square().mean()
    return mask.mean(), tv


def colour_noise(change: torch.Tensor, sigma: float = 2.0, where: torch.Tensor | None = None) -> torch.Tensor:
    """Mean magnitude of the high-frequency chroma of G's change: the blotches and rainbow noise that gender, age
    and smile edits paint on skin. Smooth colour (make-up, a paler face) and every luminance change are free.
    benchmarks/colour_noise.py measures the same on wild photos. ``where`` (1, 1, H, W): a weighted mean instead
    (stargan.regions.skin_core: on skin only, so lips, teeth and glasses' frames may change colour sharply)."""
    _, rest = chroma_parts(change, sigma)
    magnitude = (rest.square().sum(1, keepdim=True) + 1e-8).sqrt()
    return magnitude.mean() if where is None else (magnitude * where).sum() / (where.sum() * magnitude.size(0))


def classification(logits: torch.Tensor, values: torch.Tensor, labels: LabelSpace,
                   dataset: str | None = None) -> torch.Tensor:
    """Domain classification on the batch's own dataset's slice of D_cls; other datasets' logits get no
    gradient (the mask vector's purpose). Binary: BCE summed over attributes, mean over the batch (as the
    original). Categorical: cross-entropy against the (one-hot or soft) target."""
    d = labels.dataset(dataset)
    part = logits[:, labels.block(d.name)].float()
    values = values.float()
    if d.kind == BINARY:
        return F.binary_cross_entropy_with_logits(part, values, reduction="sum") / part.size(0)
    return F.cross_entropy(part, values)


def reconstruction(x: torch.Tensor, x_rec: torch.Tensor, smooth: float = 0.0) -> torch.Tensor:
    """L1 between x and G(G(x, c_trg), c_org); with ``smooth`` > 0 the Charbonnier loss sqrt(d^2 + smooth^2) - smooth:
    the L1 for differences well above ``smooth``, but without the L1's kink at zero, whose gradient keeps its
    size however small the difference and so holds a G that starts as the identity there."""
    d = x.float() - x_rec.float()
    if smooth > 0:
        return ((d * d + smooth * smooth).sqrt() - smooth).mean()
    return d.abs().mean()


def d_loss(D: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor | None, values: torch.Tensor,
           labels: LabelSpace, dataset: str | None = None, adv: str = "wgan-gp", lambda_cls: float = 1.0,
           lambda_gp: float = 10.0, regularise: bool = True, gp_alpha: torch.Tensor | None = None,
           grad_scale: float = 1.0, r1_gamma: float = 0.0,
           augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
           penalty_of: str = "map") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_D = -L_adv + lambda_cls * L_cls^r, plus the regulariser when ``regularise``: lambda_gp * L_gp for WGAN-GP,
    or r1_gamma / 2 * R1 for the log loss. Returns the total and the named, detached terms.

    ``fake`` None: the classification term alone (D_cls warm-up on real faces). ``augment``: applied to every
    image D sees (DiffAugment). Real, fake and interpolated images go through D in one batch: D has no batch
    statistics, so this equals three calls, costs one, and keeps DDP to a single forward per backward.
    ``penalty_of``: what the penalty differentiates (PENALTY_OF).
    """
    n = real.size(0)
    use_gp = adv == "wgan-gp" and regularise and fake is not None and lambda_gp > 0
    use_r1 = adv != "wgan-gp" and regularise and fake is not None and r1_gamma > 0
    if use_r1:
        real = real.detach().requires_grad_(True)
    batch = [real] if fake is None else [real, fake.detach()]
    if use_gp:
        x_hat = interpolate(real, fake, gp_alpha)
        batch.append(x_hat)
    seen = torch.cat(batch)
    src, cls = D(augment(seen) if augment is not None else seen)
    terms = {"cls": classification(cls[:n], values, labels, dataset)}
    total = lambda_cls * terms["cls"]
    if fake is not None:
        terms["adv"] = adversarial_d(src[:n], src[n:2 * n], adv)
        total = total + terms["adv"]
    if use_gp:
        terms["gp"] = gradient_penalty(penalised_critic(src[2 * n:], penalty_of), x_hat, grad_scale)
        total = total + lambda_gp * terms["gp"]
    if use_r1:
        terms["r1"] = r1_penalty(penalised_critic(src[:n], penalty_of), real, grad_scale)
        total = total + 0.5 * r1_gamma * terms["r1"]
    return total, {k: v.detach() for k, v in terms.items()}


def teacher_loss(logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """A frozen classifier of real faces reads G's output (``logits``: one per attribute of the dataset's block,
    in block order): BCE against the target attribute values, summed over attributes, mean over the batch (the
    same scale as the classification term)."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, values.float(), reduction="sum") / logits.size(0)


def g_loss(G: torch.nn.Module, D: torch.nn.Module, real: torch.Tensor, c_org: torch.Tensor, c_trg: torch.Tensor,
           trg_values: torch.Tensor, labels: LabelSpace, dataset: str | None = None, adv: str = "wgan-gp",
           lambda_cls: float = 1.0, lambda_rec: float = 10.0, lambda_mask: float = 0.0, lambda_mask_tv: float = 0.0,
           teacher: torch.nn.Module | None = None, lambda_teacher: float = 0.0,
           augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
           hair_view: tuple[torch.Tensor, list[int]] | None = None,
           lambda_colour_noise: float = 0.0, colour_noise_sigma: float = 2.0,
           colour_noise_where: torch.Tensor | None = None,
           lambda_identity: float = 0.0, distill_target: torch.Tensor | None = None,
           lambda_distill: float = 0.0, rec_smooth: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_G = L_adv + lambda_cls * L_cls^f + lambda_rec * L_rec, with G's labels ``c_org``/``c_trg`` and the
    target's dataset values ``trg_values`` for the classification term; plus, when their weights are set, the
    attention mask's regularisers (on both passes of G, as GANimation) and a teacher's classification loss.

    ``hair_view`` = (where, columns): the logits of the dataset's hair-colour ``columns`` (block positions) are
    read, by D_cls and the teacher, from ``real + where * (fake - real)``: G's change only where hair may be (the
    demo keeps a hair colour off the face, stargan.regions), so a tinted face earns G no hair colour.

    ``lambda_colour_noise``: weight of the colour noise (finer than ``colour_noise_sigma`` pixels) of G's change
    as the demo pastes it, G(x, c_trg) minus G(x, c_org), weighted by ``colour_noise_where`` where given; both go
    through G in one batch.

    ``lambda_identity``: weight of the L1 between G(x, c_org) and x (CycleGAN's identity loss): asked for the
    labels a face already has, G must return that face. Without it G(x, c_org) is a blurred, checkered, generic
    face, and the change the demo pastes is the difference of two such faces (benchmarks/HISTORY.md, "G's own
    pictures, an identity loss, and the fifth stage shipped").

    ``distill_target``: a reference G's edit of the same faces for the same targets (stargan.distill); with
    ``lambda_distill`` the L1 between G's output and it joins the loss.

    ``rec_smooth``: the cycle's loss is Charbonnier with this width instead of the L1 (see reconstruction)."""
    use_mask = lambda_mask > 0 or lambda_mask_tv > 0
    n = real.size(0)
    masked = {"with_mask": True} if use_mask else {}
    if lambda_colour_noise > 0 or lambda_identity > 0:  # G's own labels too, in the same batch
        out = G(torch.cat([real, real]), torch.cat([c_trg, c_org]), source=torch.cat([c_org, c_org]), **masked)
        both, mask = out if use_mask else (out, None)
        fake, same = both[:n], both[n:]
        mask = mask[:n] if use_mask else None
    else:
        out = G(real, c_trg, source=c_org, **masked)
        fake, mask = out if use_mask else (out, None)
    out = G(fake, c_org, source=c_trg, **masked)
    rec, rec_mask = out if use_mask else (out, None)
    shown = fake
    if hair_view is not None:  # both views through D (and the teacher) in one call: D has no batch statistics
        where, columns = hair_view
        shown = torch.cat([fake, real + where * (fake - real)])
    seen = augment(shown) if augment is not None else shown
    fake_src, fake_cls = D(seen)
    if hair_view is not None:
        block = labels.block(dataset)
        d_columns = [block.start + c for c in columns]
        fake_src, hair_cls, fake_cls = fake_src[:n], fake_cls[n:], fake_cls[:n].clone()
        fake_cls[:, d_columns] = hair_cls[:, d_columns]
    terms = {"adv": adversarial_g(fake_src, adv),
             "cls": classification(fake_cls, trg_values, labels, dataset),
             "rec": reconstruction(real, rec, rec_smooth)}
    total = terms["adv"] + lambda_cls * terms["cls"] + lambda_rec * terms["rec"]
    if use_mask:
        (m1, tv1), (m2, tv2) = mask_regularisers(mask), mask_regularisers(rec_mask)
        terms["mask"], terms["mask_tv"] = (m1 + m2) / 2, (tv1 + tv2) / 2
        total = total + lambda_mask * terms["mask"] + lambda_mask_tv * terms["mask_tv"]
    if lambda_colour_noise > 0:
        terms["colour_noise"] = colour_noise(fake - same, colour_noise_sigma, colour_noise_where)
        total = total + lambda_colour_noise * terms["colour_noise"]
    if lambda_identity > 0:
        terms["identity"] = reconstruction(real, same)
        total = total + lambda_identity * terms["identity"]
    if distill_target is not None and lambda_distill > 0:
        terms["distill"] = reconstruction(distill_target, fake)
        total = total + lambda_distill * terms["distill"]
    if teacher is not None and lambda_teacher > 0:
        logits = teacher(seen)
        if hair_view is not None:
            logits, hair_logits = logits[:n].clone(), logits[n:]
            logits[:, columns] = hair_logits[:, columns]
        terms["teacher"] = teacher_loss(logits, trg_values)
        total = total + lambda_teacher * terms["teacher"]
    return total, {k: v.detach() for k, v in terms.items()}
