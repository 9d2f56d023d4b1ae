"""Training speed: the original code's plain fp32 eager loop against this trainer's paths, in one run.

One "iteration" is the paper's: a D step every iteration and a G step every n_critic-th, so its time is
t_D + t_G / n_critic. Each variant's steps are timed interleaved with the baseline's (round robin), so machine
noise hits all variants alike; the ratio to the baseline is what we report (DESIGN decision 6).

    python benchmarks/train_speed.py                  # the paper's configuration: 128 px, batch 16, width 64
    python benchmarks/train_speed.py --conv-dim 32 --repeat-g 4 --repeat-d 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stargan.config import TrainConfig  # noqa: E402
from stargan.domains import STARGAN_DEFAULT_ATTRIBUTES  # noqa: E402
from stargan.losses import adversarial_d, adversarial_g, classification, gradient_penalty, reconstruction  # noqa: E402
from stargan.trainer import Trainer  # noqa: E402


def synthetic_celeba(root: Path, size: int, n: int = 32) -> Path:
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        rows.append(f"{i}.png " + " ".join(rng.choice(["1", "-1"], len(STARGAN_DEFAULT_ATTRIBUTES))))
    (root / "list_attr_celeba.txt").write_text(f"{n}\n{' '.join(STARGAN_DEFAULT_ATTRIBUTES)}\n" + "\n".join(rows))
    return root


class OriginalLoop:
    """The original solver.py step, as it is written: fp32, NCHW, three D calls, D's grads computed in the G
    step and then zeroed."""

    def __init__(self, trainer: Trainer) -> None:
        self.t = trainer

    def d_step(self, x: torch.Tensor, v: torch.Tensor) -> None:
        t, labels = self.t, self.t.labels
        c_trg = labels.g_label(v[torch.randperm(v.size(0))])
        src, cls = t.D(x)
        loss = adversarial_d(src, torch.zeros_like(src)) + classification(cls, v, labels)
        fake = t.G(x, c_trg)
        src_fake, _ = t.D(fake.detach())
        loss = loss + src_fake.mean()
        alpha = torch.rand(x.size(0))
        x_hat = (alpha.view(-1, 1, 1, 1) * x + (1 - alpha.view(-1, 1, 1, 1)) * fake.detach()).requires_grad_(True)
        loss = loss + 10 * gradient_penalty(t.D(x_hat)[0], x_hat)
        t.opt_d.zero_grad()
        t.opt_g.zero_grad()
        loss.backward()
        t.opt_d.step()

    def g_step(self, x: torch.Tensor, v: torch.Tensor) -> None:
        t, labels = self.t, self.t.labels
        trg = v[torch.randperm(v.size(0))]
        fake = t.G(x, labels.g_label(trg))
        src, cls = t.D(fake)
        rec = t.G(fake, labels.g_label(v))
        loss = adversarial_g(src) + classification(cls, trg, labels) + 10 * reconstruction(x, rec)
        t.opt_d.zero_grad()
        t.opt_g.zero_grad()
        loss.backward()
        t.opt_g.step()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--conv-dim", type=int, default=64)
    p.add_argument("--repeat-g", type=int, default=6)
    p.add_argument("--repeat-d", type=int, default=6)
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per variant (after one warm-up)")
    p.add_argument("--variants", default="fp32,bf16,bf16+compile")
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp())
    data = synthetic_celeba(tmp / "celeba", args.image_size)
    base = dict(celeba_dir=str(data), celeba_test_size=4, image_size=args.image_size, g_conv_dim=args.conv_dim,
                d_conv_dim=args.conv_dim, g_repeat_num=args.repeat_g, d_repeat_num=args.repeat_d,
                batch_size=args.batch_size, num_workers=0, run_dir=str(tmp / "run"), device="cpu", ema_decay=0)
    variants = {"baseline (original loop, fp32 eager)": TrainConfig(**base, precision="fp32", channels_last=False)}
    for name in args.variants.split(","):
        precision = "bf16" if "bf16" in name else "fp32"
        variants[f"trainer {name}"] = TrainConfig(**base, precision=precision, channels_last=precision == "bf16",
                                                  compile="compile" in name)
    x = torch.rand(args.batch_size, 3, args.image_size, args.image_size) * 2 - 1
    v = (torch.rand(args.batch_size, len(STARGAN_DEFAULT_ATTRIBUTES)) > 0.5).float()

    steps = {}
    for name, cfg in variants.items():
        trainer = Trainer(cfg)
        if name.startswith("baseline"):
            loop = OriginalLoop(trainer)
            d, g = (lambda lp=loop: lp.d_step(x, v)), (lambda lp=loop: lp.g_step(x, v))
        else:
            def d(tr=trainer):
                tr.step = 0  # step 0 % n_critic != n_critic - 1: a D step only
                tr.train_step(0, "celeba", x, v)

            def g(tr=trainer):
                tr.step = tr.cfg.n_critic - 1  # a D step and a G step
                tr.train_step(0, "celeba", x, v)
        steps[name] = (d, g)

    times: dict[str, dict[str, list[float]]] = {n: {"d": [], "dg": []} for n in steps}
    for round_ in range(args.rounds + 1):
        for name, (d, g) in steps.items():
            for kind, fn in (("d", d), ("dg", g)):
                start = time.perf_counter()
                fn()
                if round_:  # round 0 warms up (and compiles)
                    times[name][kind].append(time.perf_counter() - start)
        print(f"round {round_} done", file=sys.stderr)

    n_critic = TrainConfig().n_critic
    results = {}
    for name, t in times.items():
        t_d = statistics.median(t["d"])
        t_g = statistics.median(t["dg"]) - t_d if name.startswith("trainer") else statistics.median(t["dg"])
        results[name] = {"d_step_s": t_d, "g_step_s": t_g, "iteration_s": t_d + t_g / n_critic}
    baseline = next(iter(results.values()))["iteration_s"]
    print(f"\n{args.image_size} px, batch {args.batch_size}, G {args.conv_dim}/{args.repeat_g}, "
          f"D {args.conv_dim}/{args.repeat_d}, n_critic {n_critic}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    print("| variant | D step (s) | G step (s) | iteration (s) | speed-up vs baseline |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['d_step_s']:.2f} | {r['g_step_s']:.2f} | {r['iteration_s']:.2f} | "
              f"{baseline / r['iteration_s']:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
