#!/usr/bin/env python
"""What pulls on G, and on D: each term of G's loss alone, its gradient at G's output and on G's first and last
layers; then each term of D's loss alone and its gradient on the first layer of D's real/fake judge and of its
classifier.

    python benchmarks/g_forces.py WEIGHTS_FOLDER [--faces 16] [--lambda-cls X] [--lambda-rec X]

Held-out CelebA faces with the kind of target the folder was trained with (another face's labels, the paper's, or
a random edit of the face's own), G and D from the folder in fp32, the terms weighted by the folder's own training
options unless given. For each term (adversarial, classification, cycle reconstruction) it prints the loss, the
RMS of its gradient per pixel of G's output, and the norm of its gradient on G's last and first convolutions. A term whose
gradient on the last layer is smaller than another's cannot move it against that one; a first layer with no
gradient means nothing before the last layer learns. On D: where the judge shares its first layers with the
classifier (the paper's D), a classification gradient far above the adversarial one means those layers learn to
classify, and the judge's real/fake map sees only what classifying needs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def forces(folder: str, faces: int = 16, lambda_cls: float | None = None, lambda_rec: float | None = None,
           seed: int = 1) -> list[dict]:
    from stargan.evaluate import load_test_faces
    from stargan.losses import adversarial_g, classification, reconstruction
    from stargan.weights import load_weights

    loaded = load_weights(folder, load_discriminator=True)
    if loaded.discriminator is None:
        raise SystemExit(f"{folder}: no discriminator.safetensors; the adversarial and classification terms need D")
    trained = loaded.provenance.get("train_config", {})
    lambda_cls = trained.get("lambda_cls", 1.0) if lambda_cls is None else lambda_cls
    lambda_rec = trained.get("lambda_rec", 10.0) if lambda_rec is None else lambda_rec
    adv, rec_smooth = trained.get("adv_loss", "wgan-gp"), trained.get("rec_smooth", 0.0)
    G = loaded.generator.float().train().requires_grad_(True)
    D = loaded.discriminator.float().eval().requires_grad_(False)
    space = loaded.config.label_space
    binary = next(d.name for d in space.datasets if d.kind == "binary")
    test = load_test_faces(space, loaded.config.image_size, limit=faces, datasets=[binary])[0]
    x, values = test.images, test.values
    gen = torch.Generator().manual_seed(seed)
    if trained.get("target_mode") == "edit":  # the run's own kind of target
        targets = space.random_edits(values, binary, gen, trained.get("max_edits", 3), trained.get("edit_focus", ()),
                                     trained.get("edit_focus_share", 0.0))
    else:
        targets = values[torch.randperm(len(values), generator=gen)]
    c_org, c_trg = space.g_label(values, binary), space.g_label(targets, binary)
    convolutions = [m.weight for m in G.main if isinstance(m, torch.nn.Conv2d)]
    first, last = convolutions[0], convolutions[-1]
    rows = []
    for term in ("adv", "cls", "rec"):
        G.zero_grad(set_to_none=True)
        fake = G(x, c_trg, source=c_org)
        fake.retain_grad()
        src, cls = D(fake)
        if term == "adv":
            loss = adversarial_g(src, adv)
        elif term == "cls":
            loss = lambda_cls * classification(cls, targets, space, binary)
        else:
            loss = lambda_rec * reconstruction(x, G(fake, c_org, source=c_trg), rec_smooth)
        loss.backward()
        rows.append({"term": term, "loss": float(loss.detach()),
                     "output_rms": float(fake.grad.pow(2).mean().sqrt()),
                     "last_layer": float(last.grad.norm()), "first_layer": float(first.grad.norm())})
    with torch.no_grad():
        fake = G(x, c_trg, source=c_org)
    print(f"{folder}: {len(x)} faces, lambda_cls {lambda_cls:g}, lambda_rec {lambda_rec:g}; "
          f"mean |G(x, c_trg) - x| {float((fake - x).abs().mean()):.2e}")
    print(f"{'G term':<7} {'loss':>9} {'grad/pixel':>11} {'last layer':>11} {'first layer':>12}")
    for r in rows:
        print(f"{r['term']:<7} {r['loss']:>9.4f} {r['output_rms']:>11.2e} {r['last_layer']:>11.2e} "
              f"{r['first_layer']:>12.2e}")
    d_rows = d_forces(D, x, fake, values, space, binary, lambda_cls, adv, trained.get("lambda_gp", 10.0),
                      trained.get("r1_gamma", 0.0), trained.get("penalty_of", "map"))
    return rows + d_rows


def d_forces(D: torch.nn.Module, x: torch.Tensor, fake: torch.Tensor, values: torch.Tensor, space, dataset: str,
             lambda_cls: float, adv: str, lambda_gp: float, r1_gamma: float = 0.0,
             penalty_of: str = "map") -> list[dict]:
    """Each term of D's loss alone (real faces, G's edits of them): its gradient on the first layer of the
    real/fake judge and of the classifier (the same layer where they share it), and the judge's mean margin."""
    from stargan.losses import (
        adversarial_d,
        classification,
        gradient_penalty,
        interpolate,
        penalised_critic,
        r1_penalty,
    )

    D = D.train().requires_grad_(True)
    judge_first = (D.src_main if D.src_main is not None else D.main)[0].weight
    class_first = D.main[0].weight
    rows = []
    for term in ("adv", "gp", "r1", "cls"):
        D.zero_grad(set_to_none=True)
        if term == "adv":
            loss = adversarial_d(D(x)[0], D(fake)[0], adv)
        elif term == "gp":
            between = interpolate(x, fake)
            critic = penalised_critic(D(between)[0], penalty_of)
            loss = lambda_gp * gradient_penalty(critic, between) if adv == "wgan-gp" else None
        elif term == "r1":
            real = x.detach().requires_grad_(True)
            critic = penalised_critic(D(real)[0], penalty_of)
            loss = 0.5 * r1_gamma * r1_penalty(critic, real) if adv != "wgan-gp" and r1_gamma > 0 else None
        else:
            loss = lambda_cls * classification(D(x)[1], values, space, dataset)
        if loss is None:
            continue
        loss.backward()
        norm = lambda w: float(w.grad.norm()) if w.grad is not None else 0.0  # noqa: E731
        rows.append({"term": f"D {term}", "loss": float(loss.detach()), "judge_first": norm(judge_first),
                     "classifier_first": norm(class_first)})
    with torch.no_grad():
        margin = float(D(x)[0].mean() - D(fake)[0].mean())
    real = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(penalised_critic(D(real)[0], "image").sum(), real)
    slope = float(grad.flatten(1).norm(dim=1).mean())  # how fast the score the losses average can change
    shared = "shares the classifier's layers" if D.src_main is None else "has its own layers"
    print(f"D's real/fake judge {shared}; its mean margin real - edited {margin:+.4f}; the slope of each image's "
          f"mean score on real faces {slope:.4f}")
    print(f"{'D term':<7} {'loss':>9} {'judge 1st':>11} {'class 1st':>11}")
    for r in rows:
        print(f"{r['term']:<7} {r['loss']:>9.4f} {r['judge_first']:>11.2e} {r['classifier_first']:>11.2e}")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", help="a weights folder with discriminator.safetensors")
    p.add_argument("--faces", type=int, default=16)
    p.add_argument("--lambda-cls", type=float, help="the classification weight (default: the folder's training)")
    p.add_argument("--lambda-rec", type=float, help="the reconstruction weight (default: the folder's training)")
    args = p.parse_args()
    forces(args.weights, args.faces, args.lambda_cls, args.lambda_rec)


if __name__ == "__main__":
    main()
