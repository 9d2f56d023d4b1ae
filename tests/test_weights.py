"""Weights folders: round trip, model card, and a clear error for every broken file (DESIGN decision 4)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from stargan.config import CONFIG_FORMAT_VERSION, ModelConfig
from stargan.domains import LabelSpace, celeba, expressions
from stargan.models import build_discriminator, build_generator, count_parameters
from stargan.weights import (
    LoadedModel,
    WeightsError,
    load_weights,
    main,
    read_config,
    save_weights,
)

TEMPLATE = [[0.38, 0.48], [0.63, 0.48], [0.5, 0.635], [0.394, 0.7375], [0.615, 0.737]]
PROVENANCE = {"data": "celeba_hq_128 (8,630 train images)", "command": "python train.py --image-size 32",
              "steps": 1234, "wall_time_s": 5400.0, "hardware": "2 CPU cores",
              "evaluation": {"classification_error": 0.123, "per_label": {"Male": 0.05}}}


def tiny_config(joint: bool = False) -> ModelConfig:
    space = LabelSpace((celeba(), expressions())) if joint else LabelSpace((celeba(),))
    return ModelConfig(space, image_size=32, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=2)


def random_models(config: ModelConfig, seed: int = 0):
    """G and D with every tensor random (InstanceNorm's affine weights too, which start as ones and zeros)."""
    torch.manual_seed(seed)
    g, d = build_generator(config), build_discriminator(config)
    with torch.no_grad():
        for p in [*g.parameters(), *d.parameters()]:
            p.copy_(torch.randn_like(p) * 0.1)
    return g.eval(), d.eval()


def g_output(g: torch.nn.Module, config: ModelConfig) -> torch.Tensor:
    torch.manual_seed(1)
    x = torch.rand(2, 3, config.image_size, config.image_size) * 2 - 1
    c = config.label_space.g_label(torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1]]), "celeba")
    with torch.no_grad():
        return g(x, c)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    config = tiny_config()
    g, d = random_models(config)
    return save_weights(tmp_path / "w", g, config, d, template=TEMPLATE, provenance=PROVENANCE)


@pytest.mark.parametrize("joint", [False, True], ids=["single", "joint"])
def test_round_trip_is_bit_identical(tmp_path: Path, joint: bool) -> None:
    config = tiny_config(joint)
    g, d = random_models(config)
    out = save_weights(tmp_path / "w", g, config, d, template=TEMPLATE, provenance=PROVENANCE)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "discriminator.safetensors",
                                                    "model.safetensors"]

    m = load_weights(out)
    assert isinstance(m, LoadedModel) and m.path == out and m.revision is None
    assert m.config == config
    # config.json on its own gives the same config object
    document = json.loads((out / "config.json").read_text())
    assert document["format_version"] == CONFIG_FORMAT_VERSION
    assert ModelConfig.from_dict(document["model"]) == config
    assert m.config.label_space.has_mask == joint and m.config.g_label_dim == (15 if joint else 5)
    assert m.template == TEMPLATE and m.provenance == PROVENANCE
    for original, loaded in ((g, m.generator), (d, m.discriminator)):
        a, b = original.state_dict(), loaded.state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert b[k].dtype == torch.float32 and torch.equal(a[k], b[k]), k
        assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert torch.equal(g_output(g, config), g_output(m.generator, config))


def test_fp16_on_disk_loads_as_requested_dtype(tmp_path: Path) -> None:
    config = tiny_config()
    g, _ = random_models(config)
    out = save_weights(tmp_path / "w", g, config, dtype=torch.float16)
    assert {v.dtype for v in load_file(str(out / "model.safetensors")).values()} == {torch.float16}
    m = load_weights(out, dtype=torch.float32)
    assert m.discriminator is None and m.template is None and m.provenance == {}
    for k, v in g.state_dict().items():
        assert torch.equal(m.generator.state_dict()[k], v.half().float()), k
    half = load_weights(out, dtype=torch.float16)
    assert next(half.generator.parameters()).dtype == torch.float16


def test_pack_writes_an_fp16_copy_with_the_same_provenance_and_a_smaller_grid(tmp_path: Path) -> None:
    from PIL import Image

    config = tiny_config()
    g, d = random_models(config)
    src = save_weights(tmp_path / "export", g, config, d, provenance={"steps": 7})
    Image.new("RGB", (3200, 400), (10, 200, 30)).save(src / "sample_grid.png")
    assert main(["pack", str(src), str(tmp_path / "ship")]) == 0
    out = tmp_path / "ship"
    for file in ("model.safetensors", "discriminator.safetensors"):
        assert {v.dtype for v in load_file(str(out / file)).values()} == {torch.float16}
        assert (out / file).stat().st_size < 0.6 * (src / file).stat().st_size
    packed = load_weights(out)
    assert packed.provenance == {"steps": 7} and packed.config.to_dict() == config.to_dict()
    for k, v in g.state_dict().items():
        assert torch.equal(packed.generator.state_dict()[k], v.half().float()), k
    assert Image.open(out / "sample_grid.png").size == (1600, 200)
    with pytest.raises(SystemExit):
        main(["pack", str(tmp_path / "missing"), str(tmp_path / "x")])


def test_discriminator_is_optional(folder: Path, tmp_path: Path) -> None:
    assert load_weights(folder, load_discriminator=False).discriminator is None
    # Re-saving without D removes the old D, so G is never paired with another run's D.
    m = load_weights(folder)
    save_weights(folder, m.generator, m.config)
    assert not (folder / "discriminator.safetensors").exists()
    assert load_weights(folder).discriminator is None


def test_model_card(tmp_path: Path) -> None:
    config = tiny_config(joint=True)
    g, d = random_models(config)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "sample_grid.png").write_bytes(b"\x89PNG placeholder")
    out = save_weights(tmp_path / "w", g, config, d, template=TEMPLATE, provenance=PROVENANCE)
    card = ModelCard.load(out / "README.md")
    assert card.data.license == "other" and card.data.license_name
    assert "stargan" in card.data.tags and card.data.pipeline_tag == "image-to-image"
    text = card.text
    assert "non-commercial" in text
    for name in config.label_space.all_names:
        assert f"`{name}`" in text, name
    assert "32 x 32" in text
    assert f"{count_parameters(g):,} parameters" in text and f"{count_parameters(d):,} parameters" in text
    assert "mask vector" in text
    for fact in ("celeba_hq_128", "`python train.py --image-size 32`", "1,234", "1.50 h", "2 CPU cores",
                 "- classification_error: 0.123", "| Male | 5.0% | n/a | n/a | n/a |", "(sample_grid.png)"):
        assert fact in text, fact


def test_save_refuses_weights_that_do_not_fit_the_config(tmp_path: Path) -> None:
    g, _ = random_models(tiny_config())
    wider = ModelConfig(tiny_config().label_space, image_size=32, g_conv_dim=16, g_repeat_num=1)
    with pytest.raises(WeightsError, match=r"main\.0\.weight.*shape"):
        save_weights(tmp_path / "w", g, wider)
    assert not (tmp_path / "w").exists()
    with pytest.raises(WeightsError, match="five"):
        save_weights(tmp_path / "w", g, tiny_config(), template=[[0.1, 0.2]])


# ---- broken folders: each error names the file and the problem ----------------------------------------------
def test_truncated_safetensors(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"model\.safetensors: corrupt or truncated") as e:
        load_weights(folder)
    assert "copy it again" in str(e.value)


def test_pickle_in_place_of_safetensors_is_never_unpickled(folder: Path) -> None:
    torch.save({"main.0.weight": torch.zeros(1)}, folder / "model.safetensors")
    with pytest.raises(WeightsError, match=r"model\.safetensors: corrupt or truncated"):
        load_weights(folder)


def test_config_that_does_not_match_the_weights(folder: Path) -> None:
    document = json.loads((folder / "config.json").read_text())
    document["model"]["g_conv_dim"] = 16
    (folder / "config.json").write_text(json.dumps(document))
    with pytest.raises(WeightsError) as e:
        load_weights(folder)
    msg = str(e.value)
    assert "model.safetensors" in msg and "'main.0.weight'" in msg and "(8, 8, 7, 7)" in msg and "(16, 8, 7, 7)" in msg
    assert "g_conv_dim=16" in msg and "re-export" in msg


def test_config_with_other_labels_does_not_match_the_discriminator(folder: Path) -> None:
    document = json.loads((folder / "config.json").read_text())
    document["model"]["label_space"]["datasets"][0]["names"].append("Smiling")
    (folder / "config.json").write_text(json.dumps(document))
    with pytest.raises(WeightsError, match=r"model\.safetensors.*'main\.0\.weight'.*\(8, 9, 7, 7\)"):
        load_weights(folder)


def test_unknown_format_version(folder: Path) -> None:
    document = json.loads((folder / "config.json").read_text())
    document["format_version"] = 99
    (folder / "config.json").write_text(json.dumps(document))
    with pytest.raises(WeightsError, match=r"config\.json: unknown format_version 99 .*newer.*upgrade"):
        load_weights(folder)


def test_unexpected_and_missing_tensors(folder: Path) -> None:
    from safetensors.torch import save_file

    tensors = load_file(str(folder / "model.safetensors"))
    save_file({**tensors, "main.1.running_mean": torch.zeros(8)}, str(folder / "model.safetensors"))
    with pytest.raises(WeightsError, match=r"model\.safetensors: G has 1 tensor.*main\.1\.running_mean.*stargan\.legacy"):
        load_weights(folder)
    del tensors["main.3.weight"]
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(WeightsError, match=r"model\.safetensors: G is missing 1 tensor.*main\.3\.weight"):
        load_weights(folder)


@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_missing_file(folder: Path, name: str) -> None:
    (folder / name).unlink()
    with pytest.raises(WeightsError, match=rf"{re.escape(name)}: missing"):
        load_weights(folder)


def test_damaged_config_json(folder: Path) -> None:
    (folder / "config.json").write_text('{"format_version": 1, "model": ')
    with pytest.raises(WeightsError, match=r"config\.json: not valid JSON"):
        read_config(folder / "config.json")


def test_source_that_is_neither_folder_nor_repo_id(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not a weights folder"):
        load_weights(tmp_path / "no" / "such" / "folder")
    (tmp_path / "file").write_text("x")
    with pytest.raises(WeightsError, match="not a weights folder"):
        load_weights(tmp_path / "file")
