"""Evaluation: the judges (``stargan.judges``), trained on real faces, read what a model's edits show,
as the paper did.

For a weights folder, every held-out face is translated to every target of its own dataset (a binary attribute
flipped, each hair colour set, each expression set), or to the targets named with ``--labels``, and scored per
label:

* success: the judge reads the target (binary: its 0/1 reading equals the target value; expression: its argmax
  is the target);
* preservation: the share of the attribute judge's readings that stay the same, over the 40 attributes minus
  the one edited (minus every hair colour for a hair-colour target, since those change by design);
* reconstruction: mean L1 of G(G(x, c_trg), c_org) against x, in [-1, 1] units;
* judge_accuracy_real: the judge's accuracy for that label on the real test faces (the ceiling);
* realism: the Fréchet distance between the attribute judge's penultimate (512-d, average-pooled) features of
  the real test faces and of all their translations ("FID-judge": FID's formula on these features, not on
  Inception's, so its values are not comparable with published FIDs).

Realism per headline edit (``realism_per_edit``, in ``model``'s report and card, or alone with ``realism``): for
gender and age both ways, a smile on and off, glasses on, each hair colour from the others and two expressions
from neutral, held-out real faces with the source value (S) and with the target value (T) by the data's own
labels, and S edited as the demo shows it (E): the share of the S-to-T gap the edit closes (stargan.realism),
beside its success on the same faces, and a plain grade from both (``grade``) that the demo shows on its
controls. Success alone counts an edit that paints an attribute's cues (lipstick for "female", a dark band for
glasses) as done; realism counts it as what it looks like.

What is judged (``--scoring``):

* ``user`` (the default): what a person sees in the demo. The face at its own resolution (the 128 px test image)
  plus G's change, G(x, c_target) - G(x, c_source) with c_source what D_cls reads from the face, computed at
  the model's size and upsampled, exactly as ``stargan.inference.Editor`` pastes it (an expression's change as
  luminance only);
* ``direct``: G's own output at the model's size (the paper's measure).

A binary target moves the attributes that go with the edited one along with it, as the demo does
(``domains.RELATED_ATTRIBUTES``: make-up and facial hair with Male, the cheeks and mouth with Smiling);
``--no-related`` scores the lone flip instead. In user scoring each edit is kept to its region as the demo keeps
it (``stargan.regions``: a hair colour on the hair, nothing on the background); ``--no-regions`` scores G's
change wherever G makes it.

Commands::

    python -m stargan.evaluate train-judges --out benchmarks/judges
    python -m stargan.evaluate model WEIGHTS_FOLDER [--judges benchmarks/judges] [--limit 1000] [--out DIR]
                                     [--scoring user|direct] [--labels Male,Young,...] [--no-related]
                                     [--no-regions]
                                     [--expression-roots DIR ...] [--update-card] [--no-realism]
    python -m stargan.evaluate realism WEIGHTS_FOLDER [--limit 300] [--no-related] [--no-regions] [--update-card]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.utils.data import Dataset, Subset

from .data import CelebADataset, DataError, ExpressionDataset
from .device import autocast, resolve_precision
from .domains import BINARY, CATEGORICAL, CELEBA_ATTRIBUTES, HAIR_COLOURS, RELATED_BY_DEFAULT, LabelSpace, celeba
from .judges import (
    ATTRIBUTE_JUDGE,
    DATA_ROOT,
    DEFAULT_EXPRESSION_TEST,
    DEFAULT_EXPRESSION_TRAIN,
    DEFAULT_JUDGES,
    EXPRESSION_JUDGE,
    PREPARE_HINT,
    PROJECT_ROOT,
    EvaluationError,
    Judge,
    class_accuracy,
    dataset_tensors,
    load_judge,
    train_judges,
)
from .realism import DEFAULT_FEATURES, FEATURE_SETS, MIN_FACES, gap_closed, grade, judge_features

log = logging.getLogger(__name__)

SCORINGS = ("user", "direct")
CROP_SIZE = 128  # the test faces' own resolution: what user scoring pastes G's change into


# ---- evaluating a model ---------------------------------------------------------------------------------------
@dataclass
class TestFaces:
    """Held-out faces of one dataset of a model's label space, at the model's image size."""

    dataset: str
    images: torch.Tensor  # (N, 3, S, S) in [-1, 1]
    values: torch.Tensor  # (N, len(block)): the faces' real labels in the model's block (c_org)
    attributes: torch.Tensor | None  # (N, 40) real CelebA labels in CELEBA_ATTRIBUTES order; None for expressions
    source: list[str]
    available: int  # faces in the held-out split before --limit


def _subset(dataset: Dataset, limit: int | None, seed: int) -> tuple[Dataset, int]:
    n = len(dataset)
    if limit is None or limit >= n:
        return dataset, n
    keep = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values
    return Subset(dataset, keep.tolist()), n


def load_test_faces(space: LabelSpace, image_size: int, celeba_root: Path = DATA_ROOT / "celeba_hq_128",
                    expression_roots: Sequence[Path] = DEFAULT_EXPRESSION_TEST, limit: int | None = 1000,
                    seed: int = 0, datasets: Sequence[str] | None = None) -> list[TestFaces]:
    """Held-out faces for every dataset of ``space``: CelebA's test split for a binary block, the expression test
    folders for a categorical one; ``limit`` faces per dataset at most (a seeded random subset)."""
    out = []
    for d in space.datasets:
        if datasets is not None and d.name not in datasets:
            continue
        if d.kind == BINARY:
            unknown = [n for n in d.names if n not in CELEBA_ATTRIBUTES]
            if unknown:
                raise EvaluationError(f"dataset {d.name!r} has non-CelebA attribute(s) {unknown}; the attribute "
                                      "judge knows CelebA's 40 attributes only")
            full = CelebADataset(celeba_root, celeba(CELEBA_ATTRIBUTES), "test", image_size=image_size)
            subset, available = _subset(full, limit, seed)
            images, attributes = dataset_tensors(subset)
            columns = [CELEBA_ATTRIBUTES.index(n) for n in d.names]
            out.append(TestFaces(d.name, images, attributes[:, columns], attributes, [f"{celeba_root} (test split)"],
                                 available))
        else:
            missing = [str(r) for r in expression_roots if not Path(r).is_dir()]
            if missing:
                raise EvaluationError(f"expression test folder(s) not found: {missing}; pass --expression-roots, "
                                      f"or {PREPARE_HINT}")
            subset, available = _subset(ExpressionDataset(expression_roots, d, image_size=image_size), limit, seed)
            images, values = dataset_tensors(subset)
            out.append(TestFaces(d.name, images, values, None, [str(r) for r in expression_roots], available))
    return out


def reads_target(judge: Judge, pred: torch.Tensor, name: str, wanted: torch.Tensor | None = None) -> torch.Tensor:
    """Per face, whether the judge's reading ``pred`` shows the target: for a binary judge, the reading of
    ``name`` equals ``wanted`` (0/1 per face); for a categorical judge, the argmax is ``name``."""
    j = judge.names.index(name)
    if judge.kind == BINARY:
        if wanted is None:
            raise ValueError("a binary target needs the wanted value per face")
        return pred[:, j] == (wanted > 0.5).float()
    return pred == j


class _Moments:
    """Running mean and covariance of feature vectors (float64), for the Fréchet distance."""

    def __init__(self) -> None:
        self.n, self.sum, self.outer = 0, None, None

    def add(self, f: torch.Tensor, weight: int = 1) -> None:
        """Add feature rows, each counted ``weight`` times."""
        f = f.double()
        s, o = weight * f.sum(0), weight * (f.T @ f)
        self.sum = s if self.sum is None else self.sum + s
        self.outer = o if self.outer is None else self.outer + o
        self.n += weight * len(f)

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self.sum / self.n
        cov = (self.outer - self.n * torch.outer(mu, mu)) / max(self.n - 1, 1)
        return mu, cov


def frechet_distance(a: _Moments, b: _Moments) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) (FID's formula)."""
    (m1, s1), (m2, s2) = a.stats(), b.stats()
    vals, vecs = torch.linalg.eigh(s1)
    root1 = vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp(min=0).sqrt().sum()
    return float((m1 - m2).square().sum() + torch.trace(s1) + torch.trace(s2) - 2 * cross)


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(sum(kept) / len(kept), 4) if kept else None


@dataclass
class Report:
    evaluation: dict[str, Any]  # the model card's shape: per_label, summary, command, test_faces
    details: dict[str, Any]
    grid: torch.Tensor  # (3, H, W) in [0, 1]

    def markdown(self) -> str:
        ev, s = self.evaluation, self.evaluation["summary"]

        def f(v: float | None, pct: bool = True) -> str:
            return "n/a" if v is None else (f"{100 * v:.1f}%" if pct else f"{v:.3f}")

        lines = [f"Model: `{self.details['model']}`", "",
                 "| label | dataset | success | preservation | reconstruction L1 | judge on real |",
                 "| --- | --- | ---: | ---: | ---: | ---: |"]
        for name, m in ev["per_label"].items():
            lines.append(f"| {name} | {self.details['dataset_of'][name]} | {f(m['success'])} | "
                         f"{f(m['preservation'])} | {f(m['reconstruction'], False)} | {f(m['judge_accuracy_real'])} |")
        lines += ["", "| summary | value |", "| --- | ---: |"]
        for k, v in s.items():
            lines.append(f"| {k} | {f(v, pct=k != 'realism_fid_judge')} |")
        faces = ", ".join(f"{k}: {v['faces']} of {v['available']}" for k, v in ev["test_faces"].items())
        targets = ("with their related attributes (make-up and facial hair with Male, cheeks and mouth with "
                   "Smiling), as the demo makes them" if ev.get("related_attributes") else "lone flips")
        if ev.get("edit_regions"):
            targets += "; each edit kept to its region (stargan.regions)"
        if ev.get("realism"):
            lines += ["", "Realism per headline edit (what a person sees):", "", realism_markdown(ev["realism"])]
        lines += ["", f"Held-out faces: {faces}. Binary targets: {targets}. Scoring: {self.details['scoring']}.",
                  f"Realism: {self.details['realism_features']}; the same distance "
                  f"between two halves of the real faces is {self.details['realism_real_halves']:.2f}.",
                  f"Runtime {self.details['runtime_s']:.0f} s ({self.details['precision']}, "
                  f"{self.details['threads']} thread(s)).", "", f"Command: `{ev['command']}`", ""]
        return "\n".join(lines)


@torch.inference_mode()
def evaluate_model(model: Any, judges: str | Path = DEFAULT_JUDGES,
                   celeba_root: Path = DATA_ROOT / "celeba_hq_128",
                   expression_roots: Sequence[Path] = DEFAULT_EXPRESSION_TEST, limit: int | None = 1000,
                   batch_size: int = 64, precision: str = "auto", seed: int = 0, command: str = "",
                   grid_faces: int = 4, rec_limit: int | None = 256, scoring: str = "user",
                   labels: Sequence[str] | None = None, related: bool = RELATED_BY_DEFAULT, regions: bool = True) -> Report:
    """Translate every held-out face to every target of its dataset (or to the targets in ``labels``) and score
    what ``scoring`` shows (module docstring) with the judges.

    ``model`` is a weights folder path or a :class:`stargan.weights.LoadedModel` (its ``generator`` may be any
    module called as ``G(x, c, source=c_source)``). ``precision`` "auto" is bf16 autocast where the CPU computes bf16 natively,
    else fp32. Reconstruction is measured on the first ``rec_limit`` faces of each dataset (rounded up to whole
    batches; None: all), since it costs a second pass of G per face and target. ``regions`` (user scoring):
    keep each edit to its region, as the demo does.
    """
    from .inference import Editor
    from .weights import LoadedModel, load_weights

    if scoring not in SCORINGS:
        raise EvaluationError(f"scoring {scoring!r}: choose one of {', '.join(SCORINGS)}")
    start = time.time()
    precision = resolve_precision(precision, torch.device("cpu"))
    loaded: LoadedModel = model if isinstance(model, LoadedModel) else \
        load_weights(model, load_discriminator=scoring == "user")
    space, size, g = loaded.config.label_space, loaded.config.image_size, loaded.generator
    wanted = _check_labels(space, labels)
    editor = Editor(loaded, precision=precision) if scoring == "user" else None
    attr_judge, attr_spec = load_judge(judges, ATTRIBUTE_JUDGE)
    expr_judge = None
    if any(d.kind == CATEGORICAL and wanted & set(d.names) for d in space.datasets):
        expr_judge, _ = load_judge(judges, EXPRESSION_JUDGE)
    shown_size = max(size, CROP_SIZE) if scoring == "user" else size
    faces = load_test_faces(space, shown_size, celeba_root, expression_roots, limit, seed,
                            datasets=[d.name for d in space.datasets if wanted & set(d.names)])
    device = torch.device("cpu")
    real_moments, fake_moments = _Moments(), _Moments()
    real_features: list[torch.Tensor] = []
    per_label: dict[str, dict[str, float | None]] = {}
    dataset_of: dict[str, str] = {}
    grid_rows: list[list[torch.Tensor]] = []

    def batches(n: int):
        return range(0, n, batch_size)

    def model_size(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == size:
            return x
        return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)

    for tf in faces:
        d = space.dataset(tf.dataset)
        shown, n = tf.images, len(tf.images)  # the faces as a person sees them (user) or as G gets them (direct)
        x = torch.cat([model_size(shown[i: i + batch_size]) for i in batches(n)])
        targets = [(name, t) for name, t in space.single_domain_targets(d.name, tf.values) if name in wanted]
        attr_real, expr_real = [], []
        for i in batches(n):
            with autocast(device, precision):
                p, feats = attr_judge.read(shown[i: i + batch_size])
                attr_real.append(p)
                # Each real face counts once per target, as its translations do, so that datasets with
                # different numbers of targets weigh the same in both distributions.
                real_moments.add(feats, weight=len(targets))
                real_features.append(feats)
                if d.kind == CATEGORICAL:
                    expr_real.append(expr_judge.read(shown[i: i + batch_size])[0])
        attr_real = torch.cat(attr_real)
        source = editor.read_labels(x) if editor is not None else None
        edit_regions = editor.regions_of(shown) if editor is not None and regions else None
        c_org = space.g_label(tf.values, d.name)
        rows = [[shown[k]] for k in range(min(grid_faces, n))]
        for name, target in targets:
            if related and d.kind == BINARY:
                target = space.with_related(target, tf.values, [name], d.name)
            c_trg = space.g_label(target, d.name)
            hits, kept, l1, n_rec = 0.0, 0.0, 0.0, 0
            excluded = {name} | (set(HAIR_COLOURS) if name in HAIR_COLOURS else set())
            keep = [j for j, a in enumerate(attr_judge.names) if a not in excluded]
            for i in batches(n):
                part = slice(i, i + batch_size)
                xb = x[part]
                with autocast(device, precision):
                    measure_rec = rec_limit is None or i < rec_limit
                    fake = g(xb, c_trg[part], source=c_org[part]).float().clamp(-1, 1) \
                        if editor is None or measure_rec else None
                    if editor is None:
                        edited = fake
                    else:
                        value = target[part, d.index(name)]
                        edited = _user_view(editor, shown[part], xb, source[part], name, value, related,
                                            None if edit_regions is None else edit_regions[part])
                    if measure_rec:
                        rec = g(fake, c_org[part], source=c_trg[part]).float()
                        l1 += float((rec - xb).abs().mean(dim=(1, 2, 3)).sum())
                        n_rec += len(xb)
                    attr_fake, feats = attr_judge.read(edited)
                    if d.kind == BINARY:
                        hits += float(reads_target(attr_judge, attr_fake, name, target[part, d.index(name)]).sum())
                    else:
                        hits += float(reads_target(expr_judge, expr_judge.read(edited)[0], name).sum())
                fake_moments.add(feats)
                kept += float((attr_fake[:, keep] == attr_real[part][:, keep]).float().mean(1).sum())
                if i == 0:
                    for k, row in enumerate(rows):
                        row.append(edited[k])
            if d.kind == BINARY:
                j = attr_judge.names.index(name)
                real_acc = float((attr_real[:, j] == tf.attributes[:, j]).float().mean())
            else:
                real_acc = class_accuracy(torch.cat(expr_real), tf.values.argmax(1), expr_judge.names)[name]
            per_label[name] = {"success": round(hits / n, 4), "preservation": round(kept / n, 4),
                               "reconstruction": round(l1 / n_rec, 4) if n_rec else None,
                               "judge_accuracy_real": None if real_acc is None else round(real_acc, 4)}
            dataset_of[name] = d.name
            log.info("%s: success %.3f, preservation %.3f, reconstruction %s (%.0f s)", name,
                     per_label[name]["success"], per_label[name]["preservation"], per_label[name]["reconstruction"],
                     time.time() - start)
        grid_rows += rows

    realism = frechet_distance(real_moments, fake_moments)
    halves = torch.cat(real_features)
    perm = torch.randperm(len(halves), generator=torch.Generator().manual_seed(seed))
    first, second = _Moments(), _Moments()
    first.add(halves[perm[: len(perm) // 2]])
    second.add(halves[perm[len(perm) // 2:]])

    def success(name: str) -> float | None:
        return per_label[name]["success"] if name in per_label else None

    summary = {
        "hair_colour_success": _mean([success(n) for n in HAIR_COLOURS if n in per_label]),
        "gender_success": success("Male"),
        "age_success": success("Young"),
        "expression_success_mean": _mean([per_label[n]["success"] for n, ds in dataset_of.items()
                                          if space.dataset(ds).kind == CATEGORICAL]),
        "preservation_mean": _mean([m["preservation"] for m in per_label.values()]),
        "realism_fid_judge": round(max(realism, 0.0), 3),
    }
    test_faces = {tf.dataset: {"faces": len(tf.images), "available": tf.available, "source": tf.source,
                               "image_size": shown_size,
                               "reconstruction_faces": _rec_faces(len(tf.images), rec_limit, batch_size)}
                  for tf in faces}
    evaluation = {"per_label": per_label, "summary": summary, "command": command, "test_faces": test_faces,
                  "scoring": scoring, "related_attributes": related, "edit_regions": editor is not None and regions}
    details = {"model": str(loaded.path), "dataset_of": dataset_of, "judges": str(judges),
               "attribute_judge_accuracy_mean": attr_spec.get("accuracy_mean"),
               "scoring": (f"user: the {shown_size} px face plus G's change (G(x, c_target) - G(x, c_source), "
                           "c_source read by D_cls), upsampled from the model's size as the demo pastes it"
                           if scoring == "user" else "direct: G's output at the model's size"),
               "realism_features": ("Fréchet distance on the attribute judge's 512-d penultimate features "
                                    f"(ResNet average pool, {attr_judge.image_size} px input), real test faces (each "
                                    "counted once per target of its dataset) vs all their translations"),
               "realism_real_halves": round(frechet_distance(first, second), 3),
               "preservation": ("share of the attribute judge's 40 readings unchanged, without the edited "
                                "attribute (and without every hair colour for a hair-colour target)"),
               "precision": precision, "threads": torch.get_num_threads(), "batch_size": batch_size,
               "runtime_s": round(time.time() - start, 1)}
    return Report(evaluation, details, _grid(grid_rows))


# ---- realism per edit -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeadlineEdit:
    """An edit people try first, with the real faces that stand for its source and its target."""

    key: str
    name: str  # the label edited
    value: float  # its target value
    title: str
    group: str


HEADLINE_EDITS: tuple[HeadlineEdit, ...] = (
    HeadlineEdit("to_male", "Male", 1.0, "to male", "gender"),
    HeadlineEdit("to_female", "Male", 0.0, "to female", "gender"),
    HeadlineEdit("younger", "Young", 1.0, "younger", "age"),
    HeadlineEdit("older", "Young", 0.0, "older", "age"),
    HeadlineEdit("smile_on", "Smiling", 1.0, "smile", "smile"),
    HeadlineEdit("smile_off", "Smiling", 0.0, "no smile", "smile"),
    HeadlineEdit("glasses_on", "Eyeglasses", 1.0, "glasses on", "eyeglasses"),
    *(HeadlineEdit(f"to_{h.split('_')[0].lower()}", h, 1.0, h.replace("_", " ").lower(), "hair")
      for h in HAIR_COLOURS),
    HeadlineEdit("happy", "happy", 1.0, "happy (from neutral)", "expression"),
    HeadlineEdit("surprised", "surprised", 1.0, "surprised (from neutral)", "expression"),
)
REALISM_FACES = 300  # per set (S and T) and edit: KID's spread at this size is about +-0.1 of the gap


def edit_sets(edit: HeadlineEdit, faces: TestFaces, names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices into ``faces`` of the real source faces (S) and real target faces (T) of ``edit``, by the data's
    own labels: a binary attribute's other value; a hair colour's faces with another hair colour; an
    expression's neutral faces."""
    if faces.attributes is not None:
        column = faces.attributes[:, CELEBA_ATTRIBUTES.index(edit.name)]
        target = column == edit.value
        if edit.name in HAIR_COLOURS:
            others = [CELEBA_ATTRIBUTES.index(h) for h in HAIR_COLOURS if h != edit.name]
            source = (column == 0) & (faces.attributes[:, others] > 0.5).any(1)
        else:
            source = column == 1.0 - edit.value
    else:
        label = faces.values.argmax(1)
        source, target = label == names.index("neutral"), label == names.index(edit.name)
    return source.nonzero().flatten(), target.nonzero().flatten()


def _sample(indices: torch.Tensor, limit: int, gen: torch.Generator) -> torch.Tensor:
    return indices if len(indices) <= limit else indices[torch.randperm(len(indices), generator=gen)[:limit]].sort().values


@torch.inference_mode()
def realism_per_edit(model: Any, judges: str | Path = DEFAULT_JUDGES, celeba_root: Path = DATA_ROOT / "celeba_hq_128",
                     expression_roots: Sequence[Path] = DEFAULT_EXPRESSION_TEST, limit: int = REALISM_FACES,
                     features: Sequence[str] = (DEFAULT_FEATURES,), related: bool = RELATED_BY_DEFAULT, regions: bool = True,
                     precision: str = "auto", seed: int = 0, batch_size: int = 64,
                     edits: Sequence[HeadlineEdit] = HEADLINE_EDITS, keep_images: bool = False) -> dict[str, Any]:
    """Each headline edit's realism (stargan.realism: the share of the gap from real source to real target faces
    that the demo's edit closes) beside its success, on held-out faces. ``features``: the feature sets
    measured (stargan.realism.FEATURE_SETS; the first is the reported one). With ``keep_images`` the S, E and T faces come back
    too (under "images", not JSON-serialisable)."""
    from .inference import Editor
    from .weights import LoadedModel, load_weights

    start = time.time()
    precision = resolve_precision(precision, torch.device("cpu"))
    loaded: LoadedModel = model if isinstance(model, LoadedModel) else load_weights(model)
    space, size = loaded.config.label_space, loaded.config.image_size
    editor = Editor(loaded, precision=precision)
    attr_judge, _ = load_judge(judges, ATTRIBUTE_JUDGE)
    edits = [e for e in edits if e.name in space.all_names]
    if not edits:
        raise EvaluationError(f"{loaded.path}: none of the headline edits' labels is in this model")
    kinds = {space.dataset_of(e.name).name for e in edits}
    expr_judge = load_judge(judges, EXPRESSION_JUDGE)[0] if any(
        space.dataset(k).kind == CATEGORICAL for k in kinds) else None
    shown_size = max(size, CROP_SIZE)
    faces = {tf.dataset: tf for tf in load_test_faces(space, shown_size, celeba_root, expression_roots, None, seed,
                                                      datasets=sorted(kinds))}
    region_cache: dict[tuple[str, int], torch.Tensor] = {}

    def to_model(x: torch.Tensor) -> torch.Tensor:
        return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                                                           align_corners=False)

    def regions_of(dataset: str, index: torch.Tensor, shown: torch.Tensor) -> torch.Tensor:
        missing = [k for k, i in enumerate(index.tolist()) if (dataset, i) not in region_cache]
        if missing:
            for k, r in zip(missing, editor.regions_of(shown[missing]), strict=True):
                region_cache[(dataset, int(index[k]))] = r
        return torch.stack([region_cache[(dataset, i)] for i in index.tolist()])

    results: dict[str, Any] = {}
    images: dict[str, dict[str, torch.Tensor]] = {}
    for edit in edits:
        d = space.dataset_of(edit.name)
        tf = faces[d.name]
        gen = torch.Generator().manual_seed(seed)
        s_all, t_all = edit_sets(edit, tf, d.names)
        s_idx, t_idx = _sample(s_all, limit, gen), _sample(t_all, limit, gen)
        if min(len(s_idx), len(t_idx)) < MIN_FACES:
            log.warning("%s: only %d source and %d target faces; realism needs %d of each, skipped", edit.title,
                        len(s_idx), len(t_idx), MIN_FACES)
            continue
        shown_s, shown_t = tf.images[s_idx], tf.images[t_idx]
        edited, hits = [], 0.0
        for i in range(0, len(s_idx), batch_size):
            part = shown_s[i: i + batch_size]
            x = to_model(part)
            source = editor.read_labels(x)
            where = regions_of(d.name, s_idx[i: i + batch_size], part) if regions else None
            value = torch.full((len(x),), edit.value)
            e = _user_view(editor, part, x, source, edit.name, value, related, where)
            with autocast(torch.device("cpu"), precision):
                if d.kind == BINARY:
                    hits += float(reads_target(attr_judge, attr_judge.read(e)[0], edit.name, value).sum())
                else:
                    hits += float(reads_target(expr_judge, expr_judge.read(e)[0], edit.name).sum())
            edited.append(e)
        edited = torch.cat(edited)
        by_features: dict[str, dict[str, Any] | None] = {}
        for k, name in enumerate(features):
            fs, fe, ft = (judge_features(attr_judge, z, name, precision=precision)
                          for z in (shown_s, edited, shown_t))
            try:
                by_features[name] = gap_closed(fs, fe, ft, seed=seed).to_dict()
            except EvaluationError:
                if k == 0:
                    raise
                by_features[name] = None  # a comparison feature set where real S and T are not apart
        results[edit.key] = {"title": edit.title, "name": edit.name, "value": edit.value, "group": edit.group,
                             "success": round(hits / len(s_idx), 4), **by_features[features[0]],
                             **({"by_features": {k: v and v["gap_closed"] for k, v in by_features.items()}}
                                if len(features) > 1 else {})}
        if keep_images:
            images[edit.key] = {"source": shown_s, "edited": edited, "target": shown_t, "source_index": s_idx}
        log.info("%s: gap closed %+.2f [%+.2f, %+.2f], success %.2f (%.0f s)", edit.title,
                 results[edit.key]["gap_closed"], results[edit.key]["low"], results[edit.key]["high"],
                 results[edit.key]["success"], time.time() - start)
    groups: dict[str, list[float]] = {}
    for r in results.values():
        groups.setdefault(r["group"], []).append(r["gap_closed"])
    out = {"per_edit": results, "by_group": {g: round(sum(v) / len(v), 4) for g, v in groups.items()},
           "features": (f"attribute judge ({attr_judge.image_size} px input), {features[0]}: "
                        f"{' + '.join(FEATURE_SETS[features[0]][0])} averaged over a {FEATURE_SETS[features[0]][1]}x"
                        f"{FEATURE_SETS[features[0]][1]} grid, scaled by the real faces' spread"),
           "measure": "share of the KID gap closed, 1 - KID(E, T) / KID(S, T); 90% interval from random halves of the faces",
           "related_attributes": related, "edit_regions": regions, "faces_per_set": limit,
           "runtime_s": round(time.time() - start, 1)}
    if keep_images:
        out["images"] = images
    return out


def realism_markdown(realism: dict[str, Any]) -> str:
    rows = ["| edit | realism (gap closed) | 90% interval | success | grade | faces S / T |",
            "| --- | ---: | ---: | ---: | --- | ---: |"]
    for r in realism["per_edit"].values():
        interval = f"[{r['low']:+.2f}, {r['high']:+.2f}]" if "low" in r and "high" in r else "n/a"
        rows.append(f"| {r['title']} | {r['gap_closed']:+.2f} | {interval} | {100 * r['success']:.0f}% | "
                    f"{grade(r['gap_closed'], r['success'])} | {r.get('faces_source', '?')} / "
                    f"{r.get('faces_target', '?')} |")
    how = f"Realism: {realism['measure']}, on {realism['features']}." if "measure" in realism else ""
    if "related_attributes" in realism:
        how += (f" Edits as the demo makes them with related attributes {'on' if realism['related_attributes'] else 'off'}"
                f" and each edit {'kept to its region' if realism.get('edit_regions') else 'anywhere'}.")
    return "\n".join(rows + ["", how])


def _check_labels(space: LabelSpace, labels: Sequence[str] | None) -> set[str]:
    if not labels:
        return set(space.all_names)
    unknown = [n for n in labels if n not in space.all_names]
    if unknown:
        raise EvaluationError(f"--labels: {unknown} not in this model; it knows {', '.join(space.all_names)}")
    return set(labels)


def _user_view(editor: Any, shown: torch.Tensor, x: torch.Tensor, source: torch.Tensor, name: str,
               value: torch.Tensor, related: bool = RELATED_BY_DEFAULT, regions: torch.Tensor | None = None) -> torch.Tensor:
    """What the demo shows for target ``name`` = ``value`` (per face): the shown face plus the editor's change
    (kept to ``regions`` where given), computed at the model's size and upsampled bilinearly to the shown size."""
    change = torch.zeros_like(x)
    for wanted in (0.0, 1.0):
        rows = (value > 0.5) == bool(wanted)
        if bool(rows.any()):
            change[rows] = editor.change(x[rows], {name: wanted}, source[rows], related=related,
                                         regions=None if regions is None else regions[rows])
    if change.shape[-1] != shown.shape[-1]:
        change = F.interpolate(change, size=shown.shape[-2:], mode="bilinear", align_corners=False)
    return (shown + change).clamp(-1, 1)


def _rec_limit(text: str) -> int | None:
    """``--rec-limit``: a count of faces, or 'all' (None, as the library spells it)."""
    if text.strip().lower() == "all":
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"--rec-limit {value}: give a count >= 0 or 'all'")
    return value


def _rec_faces(n: int, rec_limit: int | None, batch_size: int) -> int:
    return n if rec_limit is None else min(n, math.ceil(rec_limit / batch_size) * batch_size)


def _grid(rows: list[list[torch.Tensor]]) -> torch.Tensor:
    """Rows of [input, each target...] (different lengths per dataset), padded with white, in [0, 1]."""
    from torchvision.utils import make_grid

    if not rows:
        return torch.ones(3, 1, 1)
    width = max(len(r) for r in rows)
    tiles = []
    for r in rows:
        r = [t.float() for t in r]
        tiles += r + [torch.ones_like(r[0])] * (width - len(r))
    return make_grid(torch.stack(tiles).add(1).div(2).clamp(0, 1), nrow=width, padding=2, pad_value=1.0)


def write_report(report: Report, out: str | Path) -> dict[str, Path]:
    """evaluation.md, evaluation.json (the card's shape plus ``details``) and sample_grid.png into ``out``."""
    from torchvision.utils import save_image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "evaluation.md", "json": out / "evaluation.json", "grid": out / "sample_grid.png"}
    paths["markdown"].write_text(report.markdown())
    paths["json"].write_text(json.dumps({**report.evaluation, "details": report.details}, indent=2) + "\n")
    save_image(report.grid, paths["grid"])
    return paths


def update_card(folder: str | Path, evaluation: dict[str, Any]) -> None:
    """Write ``evaluation`` into the weights folder's config.json provenance and regenerate its README.md."""
    from .weights import (
        CARD_FILE,
        CONFIG_FILE,
        DISCRIMINATOR_FILE,
        GENERATOR_FILE,
        SAMPLE_GRID_FILE,
        model_card,
        read_config,
    )

    folder = Path(folder)
    config, template, provenance = read_config(folder / CONFIG_FILE)
    document = json.loads((folder / CONFIG_FILE).read_text())
    provenance["evaluation"] = evaluation
    document["provenance"] = provenance

    def params(file: str) -> int | None:
        path = folder / file
        return sum(t.numel() for t in load_file(str(path)).values()) if path.is_file() else None

    card = model_card(config, provenance, template, g_params=params(GENERATOR_FILE),
                      d_params=params(DISCRIMINATOR_FILE), sample_grid=(folder / SAMPLE_GRID_FILE).exists())
    for name, text in ((CONFIG_FILE, json.dumps(document, indent=2) + "\n"), (CARD_FILE, card)):
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(folder / name)
    log.info("wrote the evaluation into %s and regenerated %s", folder / CONFIG_FILE, folder / CARD_FILE)


# ---- command line ---------------------------------------------------------------------------------------------
def _command() -> str:
    return "python -m stargan.evaluate " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stargan.evaluate", description=__doc__.split("\n\n")[0],
        epilog=("The expression folders are the prepared (aligned) copies: " + PREPARE_HINT
                + ". STARGAN_DATA overrides the shared data folder (default ../shared/data)."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    tj = sub.add_parser("train-judges", help="train the attribute and expression judges from scratch")
    tj.add_argument("--out", type=Path, default=DEFAULT_JUDGES, help="folder the judges are written to "
                    "(default: benchmarks/judges, where evaluation looks for them)")
    tj.add_argument("--celeba", type=Path, default=DATA_ROOT / "celeba_hq_128",
                    help="CelebA-format folder whose train split trains, and test split measures, the attribute judge")
    tj.add_argument("--expression-train", type=Path, nargs="+", default=list(DEFAULT_EXPRESSION_TRAIN),
                    help="prepared expression train folders that train the expression judge (merged)")
    tj.add_argument("--expression-test", type=Path, nargs="+", default=list(DEFAULT_EXPRESSION_TEST),
                    help="prepared expression test folders its accuracy is measured on")
    tj.add_argument("--only", choices=(ATTRIBUTE_JUDGE, EXPRESSION_JUDGE), default=None,
                    help="train one judge only, e.g. the attribute judge after the CelebA data grew")
    tj.add_argument("--epochs", type=int, default=None, help="passes over the training images "
                    "(default: each judge's recipe in stargan.judges.JUDGE_RECIPES)")
    tj.add_argument("--shift", type=float, default=None,
                    help="random shift augmentation, a fraction of the side (default: each judge's recipe)")
    tj.add_argument("--batch-size", type=int, default=64, help="images per optimisation step (default 64)")
    tj.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the one-cycle schedule (AdamW)")
    tj.add_argument("--precision", choices=("fp32", "bf16"), default="bf16",
                    help="bf16 autocast (fast on CPUs with AVX512-BF16) or fp32")
    tj.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the batch order")
    ev = sub.add_parser("model", help="evaluate a weights folder on held-out faces")
    ev.add_argument("weights", help="a weights folder (config.json + model.safetensors) or a Hub repo id")
    ev.add_argument("--judges", type=Path, default=DEFAULT_JUDGES,
                    help="folder holding attributes.* and expressions.* (default: benchmarks/judges)")
    ev.add_argument("--limit", type=int, default=1000, help="held-out faces per dataset (a seeded random subset); "
                    "fewer for a quick look, the default for numbers to publish")
    ev.add_argument("--out", type=Path, default=None,
                    help="report folder (default: benchmarks/evaluations/<weights folder name>)")
    ev.add_argument("--celeba", type=Path, default=DATA_ROOT / "celeba_hq_128",
                    help="CelebA-format folder whose test split is evaluated")
    ev.add_argument("--expression-roots", type=Path, nargs="+", default=list(DEFAULT_EXPRESSION_TEST),
                    help="prepared expression test folders (default: the two prepared test folders)")
    ev.add_argument("--batch-size", type=int, default=64, help="faces translated at once (memory vs speed)")
    ev.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                    help="auto: bf16 autocast where the CPU computes bf16 natively, else fp32")
    ev.add_argument("--rec-limit", type=_rec_limit, default=256,
                    help="faces per dataset whose reconstruction is measured (a second pass of G); 'all': every "
                         "face; 0: none (as in the library's rec_limit)")
    ev.add_argument("--scoring", choices=SCORINGS, default="user",
                    help="user: the face plus G's change as the demo pastes it (default); direct: G's output")
    ev.add_argument("--labels", default=None,
                    help="comma-separated target names to evaluate (default: every name of the model)")
    ev.add_argument("--related", action=argparse.BooleanOptionalAction, default=RELATED_BY_DEFAULT,
                    help="move the attributes that go with an edit along with it (the demo's box; default: as the "
                         "demo starts, off); --no-related scores the lone flip")
    ev.add_argument("--regions", action=argparse.BooleanOptionalAction, default=True,
                    help="user scoring: keep each edit to its region as the demo does (a hair colour on the hair, "
                         "nothing on the background; default); --no-regions scores G's change wherever it is")
    ev.add_argument("--seed", type=int, default=0, help="seed of the held-out subset (--limit); keep it to compare "
                    "models on the same faces")
    ev.add_argument("--update-card", action="store_true",
                    help="write the results into the folder's config.json provenance and regenerate README.md")
    ev.add_argument("--realism", action=argparse.BooleanOptionalAction, default=True,
                    help="user scoring: also measure each headline edit's realism (stargan.realism; default)")
    ev.add_argument("--realism-limit", type=int, default=REALISM_FACES,
                    help=f"real source and target faces per headline edit for realism (default {REALISM_FACES})")
    re_ = sub.add_parser("realism", help="only the headline edits' realism and success (faster than `model`)")
    re_.add_argument("weights", help="a weights folder (config.json + model.safetensors) or a Hub repo id")
    re_.add_argument("--judges", type=Path, default=DEFAULT_JUDGES,
                     help="folder holding attributes.* and expressions.* (default: benchmarks/judges)")
    re_.add_argument("--limit", type=int, default=REALISM_FACES, help="real faces per set (S and T) and edit")
    re_.add_argument("--celeba", type=Path, default=DATA_ROOT / "celeba_hq_128",
                     help="CelebA-format folder whose test split is used")
    re_.add_argument("--expression-roots", type=Path, nargs="+", default=list(DEFAULT_EXPRESSION_TEST),
                     help="prepared expression test folders whose neutral, happy and surprised faces are used")
    re_.add_argument("--related", action=argparse.BooleanOptionalAction, default=RELATED_BY_DEFAULT,
                     help="move the attributes that go with an edit along with it (the demo's box; default: as the "
                          "demo starts, off)")
    re_.add_argument("--regions", action=argparse.BooleanOptionalAction, default=True,
                     help="keep each edit to its region as the demo does (default)")
    re_.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                     help="auto: bf16 autocast where the CPU computes bf16 natively, else fp32")
    re_.add_argument("--seed", type=int, default=0, help="seed of the face samples (keep it to compare models)")
    re_.add_argument("--out", type=Path, default=None,
                     help="JSON file to write (default: benchmarks/evaluations/<weights folder name>/realism.json)")
    re_.add_argument("--update-card", action="store_true",
                     help="write the realism into the folder's card (provenance.evaluation.realism), keeping the rest")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .weights import WeightsError, load_weights

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.cmd == "train-judges":
            which = (args.only,) if args.only else (ATTRIBUTE_JUDGE, EXPRESSION_JUDGE)
            results = train_judges(args.out, args.celeba, args.expression_train, args.expression_test,
                                   args.epochs, args.batch_size, args.lr, args.precision, args.seed, which,
                                   command=_command(), shift=args.shift)
            for name, m in results.items():
                print(f"{name}: " + json.dumps({k: v for k, v in m.items() if k.startswith("accuracy")}))
        elif args.cmd == "realism":
            realism = realism_per_edit(args.weights, args.judges, args.celeba, args.expression_roots, args.limit,
                                       related=args.related, regions=args.regions, precision=args.precision,
                                       seed=args.seed)
            realism["command"] = _command()
            out = args.out or PROJECT_ROOT / "benchmarks" / "evaluations" / Path(args.weights).name / "realism.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(realism, indent=2) + "\n")
            print(realism_markdown(realism))
            print(f"wrote {out}")
            if args.update_card:
                from .weights import read_config

                provenance = read_config(Path(args.weights) / "config.json")[2]
                update_card(args.weights, {**(provenance.get("evaluation") or {}), "realism": realism})
                print(f"updated {Path(args.weights) / 'config.json'} and README.md")
        else:
            model = load_weights(args.weights)  # once, for both the judges' scores and realism
            report = evaluate_model(model, args.judges, args.celeba, args.expression_roots, args.limit,
                                    args.batch_size, args.precision, args.seed, command=_command(),
                                    rec_limit=args.rec_limit, scoring=args.scoring,
                                    labels=[n.strip() for n in args.labels.split(",")] if args.labels else None,
                                    related=args.related, regions=args.regions)
            if args.realism and args.scoring == "user":
                report.evaluation["realism"] = realism_per_edit(
                    model, args.judges, args.celeba, args.expression_roots, args.realism_limit,
                    related=args.related, regions=args.regions, precision=args.precision, seed=args.seed,
                    edits=[e for e in HEADLINE_EDITS if not args.labels or e.name in args.labels.split(",")])
            out = args.out or PROJECT_ROOT / "benchmarks" / "evaluations" / Path(report.details["model"]).name
            paths = write_report(report, out)
            print(report.markdown())
            print("wrote " + ", ".join(str(p) for p in paths.values()))
            if args.update_card:
                update_card(report.details["model"], report.evaluation)
                print(f"updated {Path(report.details['model']) / 'config.json'} and README.md")
    except (EvaluationError, DataError, WeightsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
