"""A teacher for G: a frozen classifier of real faces whose reading of G's output is added to G's loss.

D_cls learns alongside G, so G can satisfy it with changes a person does not see; a classifier trained once on
real faces and frozen gives G a fixed, independent signal. It must never be an evaluation judge
(``stargan.judges``): a different architecture (a plain VGG-style convolution stack, not a ResNet), its own
seed and its own file, so that fooling it does not mean fooling the judges. The study's image sheets check that
G did not learn to fool it.

    python -m stargan.teacher --out benchmarks/teacher        # train (CelebA's train split), measure, save
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from .domains import BINARY, CELEBA_ATTRIBUTES

log = logging.getLogger(__name__)

TEACHER_FILE = "teacher"
INPUT_SIZE = 64
WIDTHS = (32, 64, 128, 256)
ARCHITECTURE = "vgg-style conv stack"


class Teacher(nn.Module):
    """Images in [-1, 1] of any size -> one logit per CelebA attribute: 3x3 conv + BatchNorm + ReLU + 2x2 max
    pool per width, global average pool, a linear layer."""

    kind = BINARY

    def __init__(self, names: Sequence[str] = CELEBA_ATTRIBUTES) -> None:
        super().__init__()
        self.names = tuple(names)
        layers: list[nn.Module] = []
        channels = 3
        for width in WIDTHS:
            layers += [nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            channels = width
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, len(names)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE:
            # in fp32: the antialiased resize has no bf16 kernel on the CPU (G at 96 or 128 px trains in bf16)
            x = F.interpolate(x.float(), size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True,
                              align_corners=False)
        return self.net(x)

    def read(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return (self(x).float() > 0).float(), None


class BlockTeacher(nn.Module):
    """The teacher's logits for one dataset block's names, in the block's order."""

    def __init__(self, teacher: Teacher, names: Sequence[str]) -> None:
        super().__init__()
        missing = [n for n in names if n not in teacher.names]
        if missing:
            raise ValueError(f"the teacher does not know {missing}; it reads {', '.join(teacher.names)}")
        self.teacher = teacher
        self.register_buffer("columns", torch.tensor([teacher.names.index(n) for n in names]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.teacher(x)[:, self.columns]


def save_teacher(teacher: Teacher, folder: Path, metrics: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in teacher.state_dict().items()}
    save_file(state, str(folder / f"{TEACHER_FILE}.safetensors"), metadata={"format": "pt"})
    spec = {"architecture": ARCHITECTURE, "widths": list(WIDTHS), "input_size": INPUT_SIZE,
            "names": list(teacher.names), "dtype": "float16", **metrics}
    (folder / f"{TEACHER_FILE}.json").write_text(json.dumps(spec, indent=2) + "\n")
    return folder


def load_teacher(folder: str | Path) -> Teacher:
    """A frozen teacher in eval mode (fp32)."""
    folder = Path(folder)
    spec_path, weights = folder / f"{TEACHER_FILE}.json", folder / f"{TEACHER_FILE}.safetensors"
    if not spec_path.is_file() or not weights.is_file():
        raise FileNotFoundError(f"no teacher in {folder} (need {spec_path.name} and {weights.name}); train one with "
                                f"`python -m stargan.teacher --out {folder}`")
    spec = json.loads(spec_path.read_text())
    if spec.get("architecture") != ARCHITECTURE or tuple(spec.get("widths", ())) != WIDTHS:
        raise ValueError(f"{spec_path}: unknown teacher architecture {spec.get('architecture')!r}")
    teacher = Teacher(spec["names"])
    teacher.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()})
    return teacher.eval().requires_grad_(False)


def train_teacher(out: Path, celeba_root: Path, epochs: int = 4, seed: int = 101, command: str = "") -> dict[str, Any]:
    from .data import CelebADataset
    from .domains import celeba
    from .judges import JUDGE_SIZE, dataset_tensors, measure_attribute_judge, train_classifier

    x, y = dataset_tensors(CelebADataset(celeba_root, celeba(CELEBA_ATTRIBUTES), "train", image_size=JUDGE_SIZE))
    teacher = Teacher(CELEBA_ATTRIBUTES)
    info = train_classifier(teacher, x, y, epochs, batch_size=64, lr=2e-3, precision="bf16", seed=seed)
    del x, y
    teacher.eval()
    # measured on the test split exactly as the attribute judge is
    metrics = {"training": {**info, "seed": seed}, "command": command,
               **measure_attribute_judge(teacher, celeba_root)}
    save_teacher(teacher, out, metrics)
    log.info("teacher: mean held-out accuracy %.4f, saved in %s", metrics["accuracy_mean"], out)
    return metrics


def build_parser() -> argparse.ArgumentParser:
    from .judges import DATA_ROOT

    p = argparse.ArgumentParser(prog="python -m stargan.teacher", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/teacher"),
                   help="folder the teacher is written to (pass it to train.py --teacher)")
    p.add_argument("--celeba", type=Path, default=DATA_ROOT / "celeba_hq_128",
                   help="CelebA-format folder: its train split trains the teacher, its test split measures it")
    p.add_argument("--epochs", type=int, default=4, help="passes over the training images (default 4)")
    p.add_argument("--seed", type=int, default=101, help="its own seed, not the judges' (0)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = "python -m stargan.teacher " + " ".join(sys.argv[1:] if argv is None else argv)
    metrics = train_teacher(args.out, args.celeba, args.epochs, args.seed, command)
    print(json.dumps({"accuracy_mean": metrics["accuracy_mean"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
