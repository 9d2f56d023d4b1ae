"""Label layout: every label vector in the project is built here (DESIGN decision 3).

A ``LabelSpace`` is an ordered list of datasets. Each dataset is either *binary* (multi-label CelebA
attributes, values in [0, 1]) or *categorical* (one-hot expressions, a probability vector).

* G's label: every dataset's block in order, then a one-hot mask naming the valid block when there are two or
  more datasets (the paper's mask vector). Blocks of the other datasets are zero.
* D_cls: one logit per name, every dataset's block in order, no mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
RAFD_EXPRESSIONS: tuple[str, ...] = (
    "angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised",
)
HAIR_COLOURS: tuple[str, ...] = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
# The original StarGAN CelebA model's five attributes.
STARGAN_DEFAULT_ATTRIBUTES: tuple[str, ...] = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")

BINARY = "binary"
CATEGORICAL = "categorical"

# Attributes that go with an edit. G learns from real faces' label vectors only, and in CelebA these almost never
# disagree with the edited attribute's new value (each rule holds for 77-100% of the training faces with that
# value; tests/test_core.py measures it on the data). A lone flip asks G for a face it never saw (a man with
# lipstick and heavy make-up, a smile with a closed mouth and flat cheeks), and it answers with a faint change.
# Moving these along with the edit asks for a face like the ones it learnt: Male 18% -> 74% on held-out faces
# (benchmarks/HISTORY.md, "Related attributes").
RELATED_ATTRIBUTES: dict[tuple[str, int], dict[str, int]] = {
    ("Male", 1): {"Arched_Eyebrows": 0, "Heavy_Makeup": 0, "Rosy_Cheeks": 0, "Wearing_Earrings": 0,
                  "Wearing_Lipstick": 0, "Wearing_Necklace": 0},
    ("Male", 0): {"5_o_Clock_Shadow": 0, "Goatee": 0, "Mustache": 0, "No_Beard": 1, "Sideburns": 0,
                  "Wearing_Necktie": 0},
    ("Smiling", 1): {"High_Cheekbones": 1, "Mouth_Slightly_Open": 1},
    ("Smiling", 0): {"High_Cheekbones": 0, "Mouth_Slightly_Open": 0},
}

# Whether edits move their related attributes unless asked otherwise (the page's box, the CLI, evaluation). Off:
# on held-out faces the shipped model's related edits read as the target more often (Male 86% vs 29%) but come
# further from real faces of the target (realism to male -0.15 vs +0.11, to female -0.49 vs -0.00, a smile -0.29
# vs -0.14), and by eye they paint the patches (benchmarks/RESULTS.md, "The page's defaults by realism").
RELATED_BY_DEFAULT = False


@dataclass(frozen=True)
class DatasetLabels:
    """One dataset's block of labels: its name, its kind and its label names in block order."""

    name: str
    kind: str
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in (BINARY, CATEGORICAL):
            raise ValueError(f"dataset {self.name!r}: kind must be {BINARY!r} or {CATEGORICAL!r}, got {self.kind!r}")
        if not self.names:
            raise ValueError(f"dataset {self.name!r} has no label names")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"dataset {self.name!r} repeats a label name: {list(self.names)}")
        object.__setattr__(self, "names", tuple(self.names))

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"{name!r} is not a label of dataset {self.name!r}; it has: {', '.join(self.names)}") from None


def celeba(attributes: Sequence[str] = STARGAN_DEFAULT_ATTRIBUTES, name: str = "celeba") -> DatasetLabels:
    unknown = [a for a in attributes if a not in CELEBA_ATTRIBUTES]
    if unknown:
        raise KeyError(f"unknown CelebA attribute(s) {unknown}; valid names: {', '.join(CELEBA_ATTRIBUTES)}")
    return DatasetLabels(name, BINARY, tuple(attributes))


def expressions(names: Sequence[str] = RAFD_EXPRESSIONS, name: str = "rafd") -> DatasetLabels:
    unknown = [n for n in names if n not in RAFD_EXPRESSIONS]
    if unknown:
        raise KeyError(f"unknown expression(s) {unknown}; valid names: {', '.join(RAFD_EXPRESSIONS)}")
    return DatasetLabels(name, CATEGORICAL, tuple(names))


@dataclass(frozen=True)
class LabelSpace:
    datasets: tuple[DatasetLabels, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "datasets", tuple(self.datasets))
        if not self.datasets:
            raise ValueError("a label space needs at least one dataset")
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names must be unique, got {names}")

    # ---- layout -------------------------------------------------------------------------------------
    @property
    def has_mask(self) -> bool:
        return len(self.datasets) > 1

    @property
    def d_dim(self) -> int:
        """Number of D_cls outputs: one per name."""
        return sum(len(d) for d in self.datasets)

    @property
    def g_dim(self) -> int:
        """Length of G's label: every block, plus the mask vector with two or more datasets."""
        return self.d_dim + (len(self.datasets) if self.has_mask else 0)

    def dataset(self, name: str | None = None) -> DatasetLabels:
        if name is None:
            if len(self.datasets) != 1:
                raise ValueError(f"name a dataset: this label space has {[d.name for d in self.datasets]}")
            return self.datasets[0]
        for d in self.datasets:
            if d.name == name:
                return d
        raise KeyError(f"no dataset {name!r} in this label space; it has {[d.name for d in self.datasets]}")

    def block(self, dataset: str | None = None) -> slice:
        """The dataset's slice of D_cls, which is also its slice of G's label."""
        start = 0
        target = self.dataset(dataset)
        for d in self.datasets:
            if d is target:
                return slice(start, start + len(d))
            start += len(d)
        raise AssertionError("unreachable")

    def mask_index(self, dataset: str | None = None) -> int:
        target = self.dataset(dataset)
        return self.d_dim + [d.name for d in self.datasets].index(target.name)

    def dataset_of(self, label_name: str) -> DatasetLabels:
        for d in self.datasets:
            if label_name in d.names:
                return d
        raise KeyError(f"{label_name!r} is not a label of this model; it knows: {', '.join(self.all_names)}")

    @property
    def all_names(self) -> tuple[str, ...]:
        return tuple(n for d in self.datasets for n in d.names)

    # ---- G labels --------------------------------------------------------------------------------------
    def g_label(self, values: torch.Tensor, dataset: str | None = None) -> torch.Tensor:
        """G's label for a batch of one dataset's label values ``(B, len(dataset))``: the block in place,
        other blocks zero, mask one-hot."""
        d = self.dataset(dataset)
        values = torch.as_tensor(values, dtype=torch.float32)
        if values.dim() == 1:
            values = values.unsqueeze(0)
        if values.shape[-1] != len(d):
            raise ValueError(f"dataset {d.name!r} needs {len(d)} values per row, got {values.shape[-1]}")
        out = values.new_zeros(values.shape[0], self.g_dim)
        out[:, self.block(d.name)] = values
        if self.has_mask:
            out[:, self.mask_index(d.name)] = 1.0
        return out

    # ---- target builders (training samples, evaluation, demo) ---------------------------------------
    def values(self, settings: Mapping[str, float], base: torch.Tensor | None = None,
               dataset: str | None = None) -> torch.Tensor:
        """A dataset's label values from ``{name: intensity}``, starting from ``base`` (zeros if None).

        Binary names take any value in [0, 1]; setting a hair colour above 0.5 lowers the other hair colours
        the model has (they are exclusive). Expression names form a probability vector: the given weights
        are normalised; an expression set alone becomes one-hot.
        """
        if not settings and dataset is None and base is None:
            raise ValueError("no label names given")
        d = self.dataset(dataset if dataset is not None else self.dataset_of(next(iter(settings))).name)
        out = torch.zeros(len(d)) if base is None else torch.as_tensor(base, dtype=torch.float32).clone().reshape(len(d))
        for name, value in settings.items():
            if name not in d.names:
                raise KeyError(f"{name!r} is not in dataset {d.name!r} ({', '.join(d.names)}); "
                               "set labels of different datasets in separate calls")
            value = float(value)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value}: intensities must lie in [0, 1]")
        if d.kind == BINARY:
            for name, value in settings.items():
                out[d.index(name)] = float(value)
                if name in HAIR_COLOURS and float(value) > 0.5:
                    for other in HAIR_COLOURS:
                        if other != name and other in d.names:
                            out[d.index(other)] = min(float(out[d.index(other)]), 1.0 - float(value))
        else:
            out = torch.zeros(len(d))
            for name, value in settings.items():
                out[d.index(name)] = float(value)
            total = float(out.sum())
            if total <= 0:
                raise ValueError(f"an expression target needs a positive weight, got {dict(settings)}")
            out = out / total
        return out

    def with_related(self, target: torch.Tensor, source: torch.Tensor, names: Sequence[str],
                     dataset: str | None = None) -> torch.Tensor:
        """Binary targets ``(B, n)`` or ``(n,)`` with the attributes related to each edited name
        (``RELATED_ATTRIBUTES``) moved along: each as far towards its rule's value as the edited name moved
        towards the rule's side from ``source`` (a half-way slider moves them half-way). Names in ``names``
        themselves are never moved: what the user set stays set."""
        d = self.dataset(dataset) if dataset else self.dataset_of(next(iter(names)))
        if d.kind != BINARY:
            raise ValueError(f"related attributes are for binary datasets; {d.name!r} is {d.kind}")
        out = torch.as_tensor(target, dtype=torch.float32).clone()
        source = torch.as_tensor(source, dtype=torch.float32).reshape(out.shape)
        for name in names:
            if name not in d.names:
                continue
            i = d.index(name)
            moved = out[..., i] - source[..., i]
            for side, progress in ((1, moved.clamp(0, 1)), (0, (-moved).clamp(0, 1))):
                for other, value in RELATED_ATTRIBUTES.get((name, side), {}).items():
                    if other in d.names and other not in names:
                        j = d.index(other)
                        out[..., j] = out[..., j] + (value - out[..., j]) * progress
        return out

    def flip(self, values: torch.Tensor, name: str, dataset: str | None = None) -> torch.Tensor:
        """Batch of binary labels with ``name`` flipped (hair colours stay exclusive)."""
        d = self.dataset(dataset) if dataset else self.dataset_of(name)
        if d.kind != BINARY:
            raise ValueError(f"{name!r} is categorical; use set_category")
        out = torch.as_tensor(values, dtype=torch.float32).clone()
        i = d.index(name)
        out[:, i] = 1.0 - out[:, i]
        if name in HAIR_COLOURS:
            on = out[:, i] > 0.5
            for other in HAIR_COLOURS:
                if other != name and other in d.names:
                    out[on, d.index(other)] = 0.0
        return out

    def set_hair(self, values: torch.Tensor, colour: str) -> torch.Tensor:
        """Batch of binary labels with hair colour ``colour`` on and the model's other hair colours off."""
        d = self.dataset_of(colour)
        if colour not in HAIR_COLOURS:
            raise ValueError(f"{colour!r} is not a hair colour ({', '.join(HAIR_COLOURS)})")
        out = torch.as_tensor(values, dtype=torch.float32).clone()
        for other in HAIR_COLOURS:
            if other in d.names:
                out[:, d.index(other)] = 1.0 if other == colour else 0.0
        return out

    def set_category(self, batch: int, name: str) -> torch.Tensor:
        """Batch of one-hot categorical labels for ``name``."""
        d = self.dataset_of(name)
        out = torch.zeros(batch, len(d))
        out[:, d.index(name)] = 1.0
        return out

    def single_domain_targets(self, dataset: str, values: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """One target per label name of ``dataset`` for a batch with original ``values``: binary names are
        flipped (hair colours set exclusively), categorical names set one-hot. Used by sample grids and
        evaluation."""
        d = self.dataset(dataset)
        targets = []
        for name in d.names:
            if d.kind == CATEGORICAL:
                targets.append((name, self.set_category(values.shape[0], name)))
            elif name in HAIR_COLOURS:
                targets.append((name, self.set_hair(values, name)))
            else:
                targets.append((name, self.flip(values, name)))
        return targets

    def random_edits(self, values: torch.Tensor, dataset: str, gen: torch.Generator,
                     max_edits: int = 3, focus: Sequence[str] = (), focus_share: float = 0.0) -> torch.Tensor:
        """Training targets that change what a person changes with the sliders: per row, 1 to ``max_edits``
        edits of a binary dataset (an attribute flipped; setting a hair colour other than the face's counts as
        one edit), or another category of a categorical dataset (one-hot).

        ``focus``: attributes (a hair colour stands for all of them) whose edits about ``focus_share`` of the rows
        draw from, instead of from every attribute: with 40 attributes each gets 1/40 of the edits, and the few
        that people use most (gender, age, smile, glasses, hair) learn as slowly as the rest."""
        d = self.dataset(dataset)
        values = torch.as_tensor(values, dtype=torch.float32)
        n = values.shape[0]
        if d.kind == CATEGORICAL:
            current = values.argmax(1)
            other = (current + 1 + torch.randint(0, len(d) - 1, (n,), generator=gen)) % len(d)
            return torch.nn.functional.one_hot(other, len(d)).float()
        hair = [h for h in HAIR_COLOURS if h in d.names]
        units = [n_ for n_ in d.names if n_ not in hair] + (["hair"] if len(hair) > 1 else hair)
        unknown = [f for f in focus if f not in d.names]
        if unknown:
            raise ValueError(f"edit focus {unknown}: not attributes of {d.name!r}")
        focused = [u for u in units if u in focus or (u == "hair" and any(f in hair for f in focus))]
        out = values.clone()
        counts = torch.randint(1, max_edits + 1, (n,), generator=gen)
        # drawn only with a focus, so that without one the targets are those of earlier runs
        in_focus = (torch.rand(n, generator=gen) < focus_share if focused and focus_share > 0
                    else torch.zeros(n, dtype=torch.bool))
        for row in range(n):
            pool = focused if in_focus[row] else units
            chosen = torch.randperm(len(pool), generator=gen)[: int(counts[row])]
            for unit in (pool[int(i)] for i in chosen):
                if unit == "hair":
                    # a colour the face does not have; with every colour on (label noise), any one alone
                    options = [h for h in hair if out[row, d.index(h)] < 0.5] or hair
                    colour = options[int(torch.randint(0, len(options), (1,), generator=gen))]
                    out[row: row + 1] = self.set_hair(out[row: row + 1], colour)
                else:
                    out[row: row + 1] = self.flip(out[row: row + 1], unit, d.name)
        return out

    def uniform_hair(self, values: torch.Tensor, dataset: str, gen: torch.Generator, share: float) -> torch.Tensor:
        """``values`` with, on about ``share`` of the rows, one of the dataset's hair colours drawn uniformly (the
        others off). With another face's labels as targets a colour comes up as often as faces have it (gray on
        about 4% of CelebA's), so G rarely practises the rare ones."""
        d = self.dataset(dataset)
        columns = [d.index(h) for h in HAIR_COLOURS if h in d.names]
        out = torch.as_tensor(values, dtype=torch.float32).clone()
        if d.kind == CATEGORICAL or not columns or share <= 0:
            return out
        rows = (torch.rand(len(out), generator=gen) < share).nonzero()  # (k, 1)
        colours = torch.randint(0, len(columns), (len(out),), generator=gen)
        out[rows, torch.tensor(columns)] = torch.nn.functional.one_hot(colours, len(columns)).float()[rows[:, 0]]
        return out

    # ---- (de)serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"datasets": [{"name": d.name, "kind": d.kind, "names": list(d.names)} for d in self.datasets]}

    @classmethod
    def from_dict(cls, data: Mapping) -> LabelSpace:
        try:
            return cls(tuple(DatasetLabels(d["name"], d["kind"], tuple(d["names"])) for d in data["datasets"]))
        except (KeyError, TypeError) as e:
            raise ValueError(f"malformed label space {data!r}: {e}") from e
