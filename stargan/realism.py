"""Realism of an edit: how close edited faces come to real faces of the target, in features of a network that
G never trains against.

Three sets of faces: held-out real faces with the source value (S), real faces with the target value (T), and
S edited towards the target (E). Their distance is KID, the kernel inception distance of Binkowski et al.
(ICLR 2018): an unbiased estimate of the squared MMD with the kernel k(a, b) = (a.b / d + 1)^3, which, unlike
the Fréchet distance, has no bias that depends on the number of faces, so a few hundred faces give a usable
number. The edit's realism is the share of the gap it closes::

    gap_closed = 1 - KID(E, T) / KID(S, T)

1 when the edited faces are as close to real target faces as those are to each other, 0 when the edit did
nothing, below 0 when it moved the faces further from real faces of the target (colour patches, blur).

The features are the attribute judge's (``stargan.judges``; it never trains G) activations after its stem and
its second residual stage, each averaged over the four quarters of the aligned face, every feature scaled by
its spread over the real faces. Which features matters (``benchmarks/RESULTS.md``, "Realism per edit"): the
judge's last features and logits are its reading of the 40 attributes, so an edit that paints an attribute's
cues (lipstick for "female") scores as real there; early stages see colour, texture and local shape, where a
colour patch or a blur is as far from a real face as it looks. Averaged over the whole face, a colour patch on
one side cancels against the rest; over quarters it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from .device import autocast
from .judges import EvaluationError, Judge

STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
# Feature sets by name: the judge stages read and the grid each stage's activations are averaged over (1: the
# whole face). "logits" is the judge's reading of the 40 attributes. The default joins the stem (colour and fine
# texture) to the second residual stage (local shape), each averaged over the four quarters of the aligned face,
# so that a colour patch on one cheek does not cancel against the rest of the face.
FEATURE_SETS: dict[str, tuple[tuple[str, ...], int]] = {
    **{stage: ((stage,), 1) for stage in STAGES},
    "logits": (("logits",), 1),
    "stem+layer2 2x2": (("stem", "layer2"), 2),
}
DEFAULT_FEATURES = "stem+layer2 2x2"
MIN_FACES = 50  # below this a KID's spread is larger than the differences worth telling apart
SUBSETS = 200


@torch.inference_mode()
def judge_features(judge: Judge, images: torch.Tensor, features: str = DEFAULT_FEATURES, batch_size: int = 128,
                   precision: str = "fp32") -> torch.Tensor:
    """(N, D) features of ``images`` (in [-1, 1], any size): the activations of the judge stages that
    ``features`` names (FEATURE_SETS), each averaged over its grid, concatenated."""
    if features not in FEATURE_SETS:
        raise EvaluationError(f"features {features!r}: choose one of {', '.join(FEATURE_SETS)}")
    if len(images) == 0:
        raise EvaluationError("no faces to read features from")
    stages, grid = FEATURE_SETS[features]
    net, out = judge.net, []
    for i in range(0, len(images), batch_size):
        x = images[i: i + batch_size]
        parts = []
        with autocast(torch.device("cpu"), precision):
            if stages == ("logits",):
                out.append(judge(x).float())
                continue
            h = net.maxpool(net.relu(net.bn1(net.conv1(judge.prepare(x)))))
            for stage in STAGES:
                if stage != "stem":
                    h = getattr(net, stage)(h)
                if stage in stages:
                    parts.append(torch.nn.functional.adaptive_avg_pool2d(h.float(), grid).flatten(1))
                if stage == stages[-1]:
                    break
        out.append(torch.cat(parts, 1))
    return torch.cat(out).double()


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """A Gaussian blur of ``sigma`` pixels: a known answer, further from real faces than the faces were."""
    from torchvision.transforms.functional import gaussian_blur

    size = 2 * int(3 * sigma) + 1
    return gaussian_blur(images, [size, size], [sigma, sigma])


def colour_blotches(images: torch.Tensor, gen: torch.Generator, cells: int = 4, strength: float = 0.25) -> torch.Tensor:
    """Random low-frequency colour blotches (a ``cells`` x ``cells`` grid of random colour offsets, smoothly
    interpolated): a known answer that looks like a bad edit's colour patches."""
    offsets = (torch.rand(len(images), 3, cells, cells, generator=gen) * 2 - 1) * strength
    field = torch.nn.functional.interpolate(offsets, size=images.shape[-2:], mode="bicubic", align_corners=False)
    return (images + field).clamp(-1, 1)


def _kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def kid(a: torch.Tensor, b: torch.Tensor) -> float:
    """Unbiased squared MMD between feature sets ``a`` (m, d) and ``b`` (n, d), polynomial kernel (KID)."""
    m, n = len(a), len(b)
    if m < 2 or n < 2:
        raise EvaluationError(f"KID needs at least 2 faces in each set, got {m} and {n}")
    kaa, kbb, kab = _kernel(a, a), _kernel(b, b), _kernel(a, b)
    within_a = (kaa.sum() - kaa.diagonal().sum()) / (m * (m - 1))
    within_b = (kbb.sum() - kbb.diagonal().sum()) / (n * (n - 1))
    return float(within_a + within_b - 2 * kab.mean())


@dataclass
class Realism:
    """One edit's realism: the share of the S-to-T gap closed, with a 90% interval."""

    gap_closed: float
    low: float
    high: float
    kid_source: float  # KID(S, T)
    kid_edited: float  # KID(E, T)
    faces_source: int
    faces_target: int

    def to_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def gap_closed(source: torch.Tensor, edited: torch.Tensor, target: torch.Tensor, subsets: int = SUBSETS,
               seed: int = 0, min_faces: int = MIN_FACES) -> Realism:
    """The share of the gap between real source and real target faces that editing closes,
    1 - KID(E, T) / KID(S, T), on features; ``edited[i]`` is ``source[i]`` edited. A 90% interval from
    ``subsets`` random halves of the faces (S and E together, T alone)."""
    if len(edited) != len(source):
        raise EvaluationError(f"{len(edited)} edited faces for {len(source)} source faces: E must be S edited")
    if min(len(source), len(target)) < min_faces:
        raise EvaluationError(f"realism needs at least {min_faces} source and {min_faces} target faces, got "
                              f"{len(source)} and {len(target)}: too few for the distance to mean anything")
    # Every feature in units of its spread over the real faces (S and T): each counts alike, whatever its scale.
    real = torch.cat([source, target])
    mean, std = real.mean(0), real.std(0).clamp(min=1e-6)
    source, edited, target = ((z - mean) / std for z in (source, edited, target))
    base = kid(source, target)
    if base <= 0:
        raise EvaluationError(f"the real source and target faces are not apart in these features (KID {base:.3g}): "
                              "there is no gap for an edit to close")
    edited_kid = kid(edited, target)
    gap = 1.0 - edited_kid / base
    # The interval from half-size subsets drawn without replacement (a face drawn twice would count as its own
    # neighbour in the within-set sums); a subset of half the faces varies about twice as much as the full
    # sets, so its deviations are shrunk by sqrt(2).
    gen = torch.Generator().manual_seed(seed)
    half_s, half_t = len(source) // 2, len(target) // 2
    draws = []
    for _ in range(subsets):
        i = torch.randperm(len(source), generator=gen)[:half_s]
        j = torch.randperm(len(target), generator=gen)[:half_t]
        draws.append(1.0 - kid(edited[i], target[j]) / kid(source[i], target[j]))
    spread = torch.tensor(draws, dtype=torch.float64)
    # deviations from the subsets' median (the ratio can have a long tail that would drag a mean past it)
    qs = (spread - spread.median()).quantile(torch.tensor([0.05, 0.95], dtype=torch.float64)) / 2 ** 0.5
    return Realism(gap, gap + float(qs[0]), gap + float(qs[1]), base, edited_kid, len(source), len(target))


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    def ranks(v: Sequence[float]) -> torch.Tensor:
        t = torch.tensor(v, dtype=torch.float64)
        order = t.argsort()
        r = torch.empty_like(t)
        r[order] = torch.arange(len(t), dtype=torch.float64)
        for value in t.unique():
            tied = t == value
            r[tied] = r[tied].mean()
        return r

    if len(a) != len(b) or len(a) < 3:
        raise ValueError("rank correlation needs two equally long sequences of at least 3 values")
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / denom if denom else 0.0


GRADES = ("works well", "subtle", "experimental: often colour patches")


def grade(gap: float, success: float) -> str:
    """A plain word for an edit from both measures: it reads as the target and comes close to real target faces
    (works well), it moves the face towards real target faces without getting there (subtle), or it takes the
    face further from real faces of the target than it was (experimental: what people see as patches)."""
    if gap >= 0.5 and success >= 0.5:
        return GRADES[0]
    if gap > 0.0:
        return GRADES[1]
    return GRADES[2]
