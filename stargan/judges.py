"""The judges: classifiers trained on real faces that read what a model's edits show, as the paper
did. Trained from scratch here (no pretrained weights can be downloaded), never used in training.

* the attribute judge: all 40 CelebA attributes, multi-label (BCE), trained on CelebA's train split;
* the expression judge: RaFD's 8 expression names (cross-entropy), trained on the two prepared expression train
  folders merged (``python -m stargan.prepare ../shared/data/expressions_posed --out
  ../prepared/expressions_posed.soft --size 128``, same for ``expressions``). It reads luminance only, so that
  the grayscale FER+ faces and the colour posed faces look alike to it and colour never decides an expression.

Both are torchvision ResNets with one BasicBlock per stage ("resnet10", 4.9 M parameters, 9.8 MB in fp16). They
take images in [-1, 1] of any size and resize them to their own input size (64 px), so they judge models of any
image size. Train them with ``python -m stargan.evaluate train-judges --out benchmarks/judges``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.models.resnet import BasicBlock, ResNet

from .data import CelebADataset, ExpressionDataset
from .device import autocast
from .domains import BINARY, CATEGORICAL, CELEBA_ATTRIBUTES, RAFD_EXPRESSIONS, celeba, expressions

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("STARGAN_DATA", PROJECT_ROOT.parent / "shared" / "data"))
PREPARED_ROOT = PROJECT_ROOT.parent / "prepared"
DEFAULT_JUDGES = PROJECT_ROOT / "benchmarks" / "judges"
EXPRESSION_SETS = ("expressions_posed.soft", "expressions.soft")
DEFAULT_EXPRESSION_TRAIN = tuple(PREPARED_ROOT / s / "train" for s in EXPRESSION_SETS)
DEFAULT_EXPRESSION_TEST = tuple(PREPARED_ROOT / s / "test" for s in EXPRESSION_SETS)
PREPARE_HINT = ("make them with `python -m stargan.prepare ../shared/data/expressions_posed --out "
                "../prepared/expressions_posed.soft --size 128` (and the same for `expressions`)")
JUDGE_SIZE = 64
JUDGE_LAYERS = (1, 1, 1, 1)
ATTRIBUTE_JUDGE = "attributes"
EXPRESSION_JUDGE = "expressions"
# Each judge's training recipe (train-judges' defaults): epochs, and the random shift (a fraction of the image
# side) added to the horizontal flip. 16 epochs with a 0.06 shift did not help the expression judge (59.5%
# overall vs 59.1%, 55% vs 71% on the posed colour test set), so both judges use 8 epochs and flips only.
JUDGE_RECIPES: dict[str, dict[str, float]] = {ATTRIBUTE_JUDGE: {"epochs": 8, "shift": 0.0},
                                              EXPRESSION_JUDGE: {"epochs": 8, "shift": 0.0}}


class EvaluationError(ValueError):
    """Judges, data or a model that cannot be evaluated; the message says what, where and how to fix."""


# ---- judges ----------------------------------------------------------------------------------------------------
class Judge(nn.Module):
    """A classifier of real faces: images in [-1, 1] of any size -> one logit per name."""

    def __init__(self, kind: str, names: Sequence[str], image_size: int = JUDGE_SIZE, grayscale: bool = False,
                 layers: Sequence[int] = JUDGE_LAYERS) -> None:
        super().__init__()
        self.kind, self.names, self.image_size, self.grayscale = kind, tuple(names), image_size, grayscale
        self.layers = tuple(layers)
        self.net = ResNet(BasicBlock, list(self.layers), num_classes=len(self.names))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True,
                              align_corners=False)
        if self.grayscale:
            y = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
            x = y.expand(-1, 3, -1, -1)
        return x.contiguous(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features (average-pooled, 512-d)."""
        n = self.net
        h = n.maxpool(n.relu(n.bn1(n.conv1(self.prepare(x)))))
        h = n.layer4(n.layer3(n.layer2(n.layer1(h))))
        return torch.flatten(n.avgpool(h), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.fc(self.features(x))

    def read(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predictions, features): binary judges give 0/1 per name, categorical ones a class index."""
        feats = self.features(x)
        logits = self.net.fc(feats).float()
        pred = (logits > 0).float() if self.kind == BINARY else logits.argmax(1)
        return pred, feats.float()

    def spec(self) -> dict[str, Any]:
        return {"architecture": "torchvision.models.resnet.ResNet", "block": "BasicBlock",
                "layers": list(self.layers), "num_classes": len(self.names), "kind": self.kind,
                "names": list(self.names), "input_size": self.image_size, "grayscale": self.grayscale,
                "input_range": [-1, 1]}


def save_judge(judge: Judge, folder: Path, name: str, metrics: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in judge.net.state_dict().items()}
    save_file(state, str(folder / f"{name}.safetensors"), metadata={"format": "pt"})
    document = {**judge.spec(), "dtype": "float16", **metrics}
    (folder / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    return folder / f"{name}.json"


def load_judge(folder: str | Path, name: str) -> tuple[Judge, dict[str, Any]]:
    """A judge from ``folder/<name>.safetensors`` + ``<name>.json``, in eval mode, fp32."""
    folder = Path(folder)
    spec_path, weights_path = folder / f"{name}.json", folder / f"{name}.safetensors"
    if not spec_path.is_file() or not weights_path.is_file():
        raise EvaluationError(f"judge {name!r} not found in {folder} (need {spec_path.name} and {weights_path.name}); "
                              "train them with `python -m stargan.evaluate train-judges --out benchmarks/judges` "
                              "or pass --judges with the folder that holds them")
    spec = json.loads(spec_path.read_text())
    if spec.get("architecture") != "torchvision.models.resnet.ResNet" or spec.get("block") != "BasicBlock":
        raise EvaluationError(f"{spec_path}: unknown judge architecture {spec.get('architecture')!r}/"
                              f"{spec.get('block')!r}; this version reads torchvision ResNet with BasicBlock")
    judge = Judge(spec["kind"], spec["names"], spec["input_size"], spec["grayscale"], spec["layers"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights_path)).items()}
    judge.net.load_state_dict(state)
    return judge.eval().requires_grad_(False), spec


def dataset_tensors(dataset: Dataset, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """All (images, values) of a dataset as two tensors (decoded once; the datasets are small)."""
    xs, ys = [], []
    for x, y in DataLoader(dataset, batch_size=batch_size, num_workers=0):
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def _augment(x: torch.Tensor, shift: float, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip, and a random shift of up to ``shift`` of the side (edges repeated)."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if shift > 0:
        theta = torch.zeros(len(x), 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, :, 2] = (torch.rand(len(x), 2, generator=gen) * 2 - 1) * 2 * shift  # grid units span 2
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    return x


def train_classifier(judge: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, lr: float,
                 precision: str, seed: int, class_weight: torch.Tensor | None = None,
                 shift: float = 0.0) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    device = torch.device("cpu")
    judge.train().to(memory_format=torch.channels_last)
    steps = epochs * math.ceil(len(x) / batch_size)
    opt = torch.optim.AdamW(judge.parameters(), lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    start = time.time()
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        total, count = 0.0, 0
        for i in range(0, len(x), batch_size):
            idx = perm[i: i + batch_size]
            xb, yb = _augment(x[idx], shift, gen), y[idx]
            with autocast(device, precision):
                logits = judge(xb).float()
            if judge.kind == BINARY:
                loss = F.binary_cross_entropy_with_logits(logits, yb)
            else:
                loss = F.cross_entropy(logits, yb.argmax(1), weight=class_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
            count += len(idx)
        log.info("judge %s: epoch %d/%d, loss %.4f, %.0f s", judge.kind, epoch + 1, epochs, total / count,
                 time.time() - start)
    judge.eval()
    return {"epochs": epochs, "batch_size": batch_size, "lr": lr, "precision": precision, "shift": shift,
            "train_images": len(x), "train_seconds": round(time.time() - start, 1)}


@torch.inference_mode()
def judge_predictions(judge: Judge, x: torch.Tensor, precision: str = "fp32", batch_size: int = 256) -> torch.Tensor:
    preds = []
    for i in range(0, len(x), batch_size):
        with autocast(torch.device("cpu"), precision):
            preds.append(judge.read(x[i: i + batch_size])[0])
    return torch.cat(preds)


def binary_accuracy(pred: torch.Tensor, truth: torch.Tensor, names: Sequence[str]) -> dict[str, float]:
    """Per-name accuracy of 0/1 predictions against 0/1 truth (columns in ``names`` order)."""
    acc = (pred == truth).float().mean(0)
    return {n: round(float(a), 4) for n, a in zip(names, acc, strict=True)}


def class_accuracy(pred: torch.Tensor, target: torch.Tensor, names: Sequence[str]) -> dict[str, float | None]:
    """Per-class accuracy (recall) of class indices; None for a class absent from ``target``."""
    out: dict[str, float | None] = {}
    for i, n in enumerate(names):
        sel = target == i
        out[n] = round(float((pred[sel] == i).float().mean()), 4) if bool(sel.any()) else None
    return out


def measure_attribute_judge(judge: nn.Module, celeba_root: Path) -> dict[str, Any]:
    """The attribute judge on CelebA's whole test split: accuracy per attribute, and recall on the faces labelled
    positive (what an edit's success is compared with: a flipped-on attribute is judged on faces that lack it)."""
    labels = celeba(CELEBA_ATTRIBUTES)
    xt, yt = dataset_tensors(CelebADataset(celeba_root, labels, "test", image_size=JUDGE_SIZE))
    pred = judge_predictions(judge, xt)
    per = binary_accuracy(pred, yt, labels.names)
    majority = binary_accuracy((yt.mean(0, keepdim=True) > 0.5).float().expand_as(yt), yt, labels.names)
    positives = yt.sum(0)
    recall = ((pred * yt).sum(0) / positives.clamp(min=1)).tolist()
    return {"data": {"train": f"{celeba_root} (train split)", "test": f"{celeba_root} (test split)",
                     "test_images": len(xt)},
            "accuracy_mean": round(sum(per.values()) / len(per), 4),
            "majority_baseline_mean": round(sum(majority.values()) / len(majority), 4),
            "accuracy": per,
            "recall_positive": {n: (round(r, 4) if positives[i] > 0 else None)
                                for i, (n, r) in enumerate(zip(labels.names, recall, strict=True))},
            "positives": {n: int(c) for n, c in zip(labels.names, positives, strict=True)}}


def train_judges(out: Path, celeba_root: Path, expression_train: Sequence[Path], expression_test: Sequence[Path],
                 epochs: int | None = None, batch_size: int = 64, lr: float = 2e-3, precision: str = "bf16",
                 seed: int = 0, which: Sequence[str] = (ATTRIBUTE_JUDGE, EXPRESSION_JUDGE),
                 command: str = "", shift: float | None = None) -> dict[str, dict[str, Any]]:
    """Train the judges from scratch, measure them on the held-out splits and save them into ``out``.

    ``epochs`` and ``shift`` default to each judge's recipe in :data:`JUDGE_RECIPES`."""
    results: dict[str, dict[str, Any]] = {}

    def recipe(name: str) -> tuple[int, float]:
        r = JUDGE_RECIPES[name]
        return (int(r["epochs"]) if epochs is None else epochs), (r["shift"] if shift is None else shift)

    if ATTRIBUTE_JUDGE in which:
        labels = celeba(CELEBA_ATTRIBUTES)
        x, y = dataset_tensors(CelebADataset(celeba_root, labels, "train", image_size=JUDGE_SIZE))
        judge = Judge(BINARY, labels.names)
        n_epochs, n_shift = recipe(ATTRIBUTE_JUDGE)
        info = train_classifier(judge, x, y, n_epochs, batch_size, lr, precision, seed, shift=n_shift)
        del x, y
        metrics = {"training": info, "command": command, **measure_attribute_judge(judge, celeba_root)}
        save_judge(judge, out, ATTRIBUTE_JUDGE, metrics)
        results[ATTRIBUTE_JUDGE] = metrics
        log.info("attribute judge: mean held-out accuracy %.4f (majority %.4f)", metrics["accuracy_mean"],
                 metrics["majority_baseline_mean"])
    if EXPRESSION_JUDGE in which:
        labels = expressions(RAFD_EXPRESSIONS)
        x, y = dataset_tensors(ExpressionDataset(expression_train, labels, image_size=JUDGE_SIZE))
        counts = y.sum(0)
        weight = (counts.sum() / counts.clamp(min=1)).sqrt()
        weight = weight / weight.mean()  # inverse-sqrt frequency: the rare classes are not ignored
        judge = Judge(CATEGORICAL, labels.names, grayscale=True)
        n_epochs, n_shift = recipe(EXPRESSION_JUDGE)
        info = train_classifier(judge, x, y, n_epochs, batch_size, lr, precision, seed, class_weight=weight,
                            shift=n_shift)
        info["class_weight"] = {n: round(float(w), 3) for n, w in zip(labels.names, weight, strict=True)}
        del x, y
        per_set = {}
        for root in expression_test:
            xt, yt = dataset_tensors(ExpressionDataset([root], labels, image_size=JUDGE_SIZE))
            pred, target = judge_predictions(judge, xt), yt.argmax(1)
            per_set[str(root)] = {"images": len(xt), "accuracy": round(float((pred == target).float().mean()), 4),
                                  "per_class": class_accuracy(pred, target, labels.names)}
        xt, yt = dataset_tensors(ExpressionDataset(expression_test, labels, image_size=JUDGE_SIZE))
        pred, target = judge_predictions(judge, xt), yt.argmax(1)
        per = class_accuracy(pred, target, labels.names)
        metrics = {"data": {"train": [str(p) for p in expression_train], "test": [str(p) for p in expression_test],
                            "test_images": len(xt)},
                   "training": info, "command": command,
                   "accuracy_overall": round(float((pred == target).float().mean()), 4),
                   "accuracy_mean_per_class": round(sum(v for v in per.values() if v is not None)
                                                    / sum(v is not None for v in per.values()), 4),
                   "accuracy": per, "per_test_set": per_set}
        save_judge(judge, out, EXPRESSION_JUDGE, metrics)
        results[EXPRESSION_JUDGE] = metrics
        log.info("expression judge: held-out accuracy %.4f overall, %.4f mean per class",
                 metrics["accuracy_overall"], metrics["accuracy_mean_per_class"])
    return results
