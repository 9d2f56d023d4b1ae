"""Importing the original implementation's checkpoints (stargan/legacy.py)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from stargan.legacy import (
    CELEBA_ALIGNED_TEMPLATE,
    LegacyImportError,
    import_original,
    main,
)
from stargan.weights import load_weights

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = (Path(os.environ.get("STARGAN_SHARED", ROOT.parent / "shared"))
             / "reference" / "official_stargan_state_dict.txt")
ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


# ---- the original implementation's modules (yunjey/stargan model.py), to write checkpoints in its layout -----------
def _in(dim: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(dim, affine=True, track_running_stats=True)  # as the original: running stats kept


class OriginalResidualBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _in(dim), nn.ReLU(inplace=True),
                                  nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _in(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class OriginalGenerator(nn.Module):
    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> None:
        super().__init__()
        layers = [nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False), _in(conv_dim), nn.ReLU(inplace=True)]
        dim = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1, bias=False), _in(dim * 2), nn.ReLU(inplace=True)]
            dim *= 2
        layers += [OriginalResidualBlock(dim) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(dim, dim // 2, 4, 2, 1, bias=False), _in(dim // 2), nn.ReLU(inplace=True)]
            dim //= 2
        layers += [nn.Conv2d(dim, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)


class OriginalDiscriminator(nn.Module):
    def __init__(self, image_size: int = 128, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> None:
        super().__init__()
        layers = [nn.Conv2d(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        dim = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            dim *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(dim, 1, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(dim, c_dim, image_size // 2**repeat_num, bias=False)


def random_state(module: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """The module's state dict with random values everywhere, running statistics included."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in module.state_dict().items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(200000)
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=gen) + 0.5
        else:
            out[k] = torch.randn(v.shape, generator=gen) * 0.05
    return out


def reference_g(sd: dict[str, torch.Tensor], x: torch.Tensor, c: torch.Tensor, repeat_num: int) -> torch.Tensor:
    """G written out from the raw checkpoint tensors, normalising every image by its own statistics."""
    def conv(h, name, stride=1, pad=0):
        return F.conv2d(h, sd[f"{name}.weight"], None, stride, pad)

    def norm(h, name):
        return F.instance_norm(h, weight=sd[f"{name}.weight"], bias=sd[f"{name}.bias"], use_input_stats=True)

    h = torch.cat([x, c[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], dim=1)
    h = F.relu(norm(conv(h, "main.0", 1, 3), "main.1"))
    h = F.relu(norm(conv(h, "main.3", 2, 1), "main.4"))
    h = F.relu(norm(conv(h, "main.6", 2, 1), "main.7"))
    i = 9
    for _ in range(repeat_num):
        r = F.relu(norm(conv(h, f"main.{i}.main.0", 1, 1), f"main.{i}.main.1"))
        h = h + norm(conv(r, f"main.{i}.main.3", 1, 1), f"main.{i}.main.4")
        i += 1
    for _ in range(2):
        h = F.relu(norm(F.conv_transpose2d(h, sd[f"main.{i}.weight"], stride=2, padding=1), f"main.{i + 1}"))
        i += 3
    return torch.tanh(conv(h, f"main.{i}", 1, 3))


def inputs(c_dim: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return torch.rand(2, 3, size, size, generator=gen) * 2 - 1, torch.randint(0, 2, (2, c_dim), generator=gen).float()


# ---- the layout itself --------------------------------------------------------------------------------------------
@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"reference listing not found at {REFERENCE}")
def test_original_modules_match_the_reference_listing() -> None:
    """The checkpoints written below have exactly the keys and shapes of the published ones (config A)."""
    listing, section = {}, None
    for line in REFERENCE.read_text().splitlines():
        if line.startswith("# Config"):
            section = line.split()[2]
        elif section == "A" and line and not line.startswith("#"):
            key, shape, _ = line.split("\t")
            listing[key] = tuple(int(s) for s in re.findall(r"\d+", shape))
    with torch.device("meta"):
        g, d = OriginalGenerator(), OriginalDiscriminator()
    ours = {f"G.{k}": tuple(v.shape) for k, v in g.state_dict().items()}
    ours |= {f"D.{k}": tuple(v.shape) for k, v in d.state_dict().items()}
    assert ours == listing


# ---- full-size conversion (config A) --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def config_a(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("original")
    with torch.device("meta"):  # shapes only: the values come from random_state
        g, d = OriginalGenerator(), OriginalDiscriminator()
    g_state, d_state = random_state(g, seed=1), random_state(d, seed=2)
    torch.save(g_state, tmp / "200000-G.ckpt")
    torch.save(d_state, tmp / "200000-D.ckpt")
    return {"dir": tmp, "G": g_state, "D": d_state}


def test_convert_config_a_with_the_command_line(config_a: dict, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "celeba"
    argv = [str(config_a["dir"] / "200000-G.ckpt"), "--discriminator", str(config_a["dir"] / "200000-D.ckpt"),
            "--attrs", ",".join(ATTRS), "--image-size", "128", "--out", str(out)]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == str(out)

    m = load_weights(out)
    assert m.config.label_space.all_names == tuple(ATTRS) and m.config.image_size == 128
    assert (m.config.g_conv_dim, m.config.g_repeat_num, m.config.d_conv_dim, m.config.d_repeat_num) == (64, 6, 64, 6)
    assert m.template == [list(p) for p in CELEBA_ALIGNED_TEMPLATE]
    assert m.provenance["steps"] == 200000
    assert m.provenance["command"] == ("python -m stargan.legacy 200000-G.ckpt --discriminator 200000-D.ckpt --attrs "
                                       f"{','.join(ATTRS)} --image-size 128 --conv-dim 64 --repeat-num 6 --out celeba")
    assert "non-commercial" in m.provenance["terms"]
    assert sum(p.numel() for p in m.generator.parameters()) == 8_430_528
    assert sum(p.numel() for p in m.discriminator.parameters()) == 44_762_048
    # running statistics dropped; every other tensor carried over unchanged
    saved = load_file(str(out / "model.safetensors"))
    assert not any(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in saved)
    kept = {k: v for k, v in config_a["G"].items() if k in saved}
    assert len(kept) == len(saved) and all(torch.equal(saved[k], v) for k, v in kept.items())
    d_saved = load_file(str(out / "discriminator.safetensors"))
    assert d_saved.keys() == config_a["D"].keys() and all(torch.equal(d_saved[k], v) for k, v in config_a["D"].items())

    # G gives the output of the original network with per-image normalisation, in eval() and train() alike
    x, c = inputs(5)  # G is fully convolutional: 32 px keeps the test fast
    expected = reference_g(config_a["G"], x, c, repeat_num=6)
    with torch.no_grad():
        torch.testing.assert_close(m.generator(x, c), expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(m.generator.train()(x, c), expected, rtol=1e-5, atol=1e-6)
    # whereas the original's running statistics would have given something else
    original = OriginalGenerator()
    original.load_state_dict(config_a["G"])
    with torch.no_grad():
        h = torch.cat([x, c[:, :, None, None].expand(-1, -1, 32, 32)], dim=1)
        assert not torch.allclose(original.eval().main(h), expected, atol=1e-3)


# ---- refusals, on a tiny original model ----------------------------------------------------------------------------
TINY = {"conv_dim": 8, "repeat_num": 1}


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> tuple[Path, Path, dict, dict]:
    g_state = random_state(OriginalGenerator(8, 5, 1), seed=3)
    d_state = random_state(OriginalDiscriminator(32, 8, 5, 1), seed=4)
    torch.save(g_state, tmp_path / "G.ckpt")
    torch.save(d_state, tmp_path / "D.ckpt")
    return tmp_path / "G.ckpt", tmp_path / "D.ckpt", g_state, d_state


def test_tiny_conversion_and_old_checkpoints_without_num_batches_tracked(tiny_ckpt, tmp_path: Path) -> None:
    g_path, d_path, g_state, _ = tiny_ckpt
    # as written by PyTorch < 0.4.1: no num_batches_tracked
    torch.save({k: v for k, v in g_state.items() if not k.endswith("num_batches_tracked")}, g_path)
    out = import_original(g_path, tmp_path / "out", ATTRS, image_size=32, discriminator_ckpt=d_path, **TINY)
    m = load_weights(out)
    x, c = inputs(5)
    with torch.no_grad():
        torch.testing.assert_close(m.generator(x, c), reference_g(g_state, x, c, repeat_num=1), rtol=1e-5, atol=1e-6)
    assert m.discriminator is not None and "steps" not in m.provenance
    assert json.loads((out / "config.json").read_text())["template"] == [list(p) for p in CELEBA_ALIGNED_TEMPLATE]


def test_extra_key_is_refused_by_name(tiny_ckpt, tmp_path: Path) -> None:
    g_path, _, g_state, _ = tiny_ckpt
    torch.save({**g_state, "main.99.weight": torch.zeros(3)}, g_path)
    with pytest.raises(LegacyImportError, match=r"G\.ckpt: unexpected key\(s\).*main\.99\.weight"):
        import_original(g_path, tmp_path / "out", ATTRS, image_size=32, **TINY)
    assert not (tmp_path / "out").exists()


def test_missing_key_is_refused_by_name(tiny_ckpt, tmp_path: Path) -> None:
    g_path, d_path, g_state, d_state = tiny_ckpt
    del d_state["conv1.weight"]
    torch.save(d_state, d_path)
    with pytest.raises(LegacyImportError, match=r"D\.ckpt: missing key\(s\) of the original layout: conv1\.weight"):
        import_original(g_path, tmp_path / "out", ATTRS, image_size=32, discriminator_ckpt=d_path, **TINY)
    del g_state["main.4.bias"]
    torch.save(g_state, g_path)
    with pytest.raises(LegacyImportError, match=r"missing key\(s\) of the original layout: main\.4\.bias"):
        import_original(g_path, tmp_path / "out", ATTRS, image_size=32, **TINY)


def test_wrong_architecture_options_get_a_hint(tiny_ckpt, tmp_path: Path) -> None:
    g_path, *_ = tiny_ckpt
    with pytest.raises(LegacyImportError, match="looks like a generator with --conv-dim 8 --repeat-num 1"):
        import_original(g_path, tmp_path / "out", ATTRS, image_size=32)  # paper defaults: 64 and 6


def test_label_count_is_checked_against_attrs(tiny_ckpt, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    g_path, d_path, *_ = tiny_ckpt
    argv = [str(g_path), "--attrs", "Black_Hair,Blond_Hair,Male,Young", "--image-size", "32", "--conv-dim", "8",
            "--repeat-num", "1", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "trained with 5 labels" in err and "--attrs names 4" in err
    with pytest.raises(LegacyImportError, match="unknown CelebA attribute"):
        import_original(g_path, tmp_path / "out", [*ATTRS[:4], "Blue_Hair"], image_size=32, **TINY)
    with pytest.raises(LegacyImportError, match=r"--image-size 32 for repeat_num 1, not 64"):
        import_original(g_path, tmp_path / "out", ATTRS, image_size=64, discriminator_ckpt=d_path, **TINY)


class NotATensor:
    pass


def test_checkpoints_are_never_unpickled(tiny_ckpt, tmp_path: Path) -> None:
    g_path, _, g_state, _ = tiny_ckpt
    torch.save({**g_state, "extra": NotATensor()}, g_path)
    with pytest.raises(LegacyImportError, match="without unpickling code"):
        import_original(g_path, tmp_path / "out", ATTRS, image_size=32, **TINY)
    with pytest.raises(LegacyImportError, match="no such checkpoint"):
        import_original(tmp_path / "absent.ckpt", tmp_path / "out", ATTRS, image_size=32, **TINY)
