"""StarGAN's losses: adversarial (WGAN-GP or the log loss), gradient penalty, domain classification and
reconstruction, combined with the paper's weights into ``d_loss`` and ``g_loss``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .domains import BINARY, LabelSpace

ADV_LOSSES = ("wgan-gp", "log")


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


def reconstruction(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """L1 between x and G(G(x, c_trg), c_org)."""
    return (x.float() - x_rec.float()).abs().mean()


def d_loss(D: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, values: torch.Tensor, labels: LabelSpace,
           dataset: str | None = None, adv: str = "wgan-gp", lambda_cls: float = 1.0, lambda_gp: float = 10.0,
           with_gp: bool = True, gp_alpha: torch.Tensor | None = None,
           grad_scale: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_D = -L_adv + lambda_cls * L_cls^r (+ lambda_gp * L_gp for WGAN-GP). Returns the total and the named,
    detached terms.

    Real, fake and interpolated images go through D in one batch: D has no batch statistics, so this equals
    three calls, costs one, and keeps DDP to a single forward per backward.
    """
    n = real.size(0)
    batch = [real, fake.detach()]
    use_gp = adv == "wgan-gp" and with_gp
    if use_gp:
        x_hat = interpolate(real, fake, gp_alpha)
        batch.append(x_hat)
    src, cls = D(torch.cat(batch))
    terms = {"adv": adversarial_d(src[:n], src[n:2 * n], adv),
             "cls": classification(cls[:n], values, labels, dataset)}
    total = terms["adv"] + lambda_cls * terms["cls"]
    if use_gp:
        terms["gp"] = gradient_penalty(src[2 * n:], x_hat, grad_scale)
        total = total + lambda_gp * terms["gp"]
    return total, {k: v.detach() for k, v in terms.items()}


def g_loss(G: torch.nn.Module, D: torch.nn.Module, real: torch.Tensor, c_org: torch.Tensor, c_trg: torch.Tensor,
           trg_values: torch.Tensor, labels: LabelSpace, dataset: str | None = None, adv: str = "wgan-gp",
           lambda_cls: float = 1.0, lambda_rec: float = 10.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_G = L_adv + lambda_cls * L_cls^f + lambda_rec * L_rec, with G's labels ``c_org``/``c_trg`` and the
    target's dataset values ``trg_values`` for the classification term."""
    fake = G(real, c_trg)
    fake_src, fake_cls = D(fake)
    rec = G(fake, c_org)
    terms = {"adv": adversarial_g(fake_src, adv),
             "cls": classification(fake_cls, trg_values, labels, dataset),
             "rec": reconstruction(real, rec)}
    total = terms["adv"] + lambda_cls * terms["cls"] + lambda_rec * terms["rec"]
    return total, {k: v.detach() for k, v in terms.items()}
