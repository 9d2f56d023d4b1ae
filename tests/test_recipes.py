"""The recipe study's training options: G's heads and upsampling, DiffAugment, edit targets, R1,
the attention mask's regularisers, D_cls warm-up, and the named presets of train.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from test_training import TINY, metrics

import train
from stargan.augment import augment, parse_policy
from stargan.config import ModelConfig, TrainConfig
from stargan.domains import CELEBA_ATTRIBUTES, HAIR_COLOURS, LabelSpace, celeba, expressions
from stargan.inference import Editor, LabelFoldedGenerator
from stargan.losses import mask_regularisers, r1_penalty
from stargan.models import (
    Discriminator,
    Generator,
    ResidualBlock,
    build_generator,
    load_discriminator_weights,
    load_generator_weights,
    resize_kernel_from_deconv,
)
from stargan.recipes import RECIPES, recipe
from stargan.trainer import check_options
from stargan.weights import load_weights, save_weights

from conftest import ATTRS


def _faces(n: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size) * 2 - 1


def test_residual_head_starts_as_the_identity_and_attention_near_it():
    x, c = _faces(), torch.rand(2, 5)
    assert torch.equal(Generator(8, 5, 1, head="residual")(x, c), x)
    y, mask = Generator(8, 5, 1, head="attention")(x, c, with_mask=True)
    assert float(mask.detach().max()) < 0.06  # the mask starts nearly closed
    assert torch.allclose(y, x, atol=0.06)
    assert not torch.allclose(Generator(8, 5, 1, head="image")(x, c), x, atol=0.5)
    with pytest.raises(ValueError, match="only the attention head"):
        Generator(8, 5, 1, head="residual")(x, c, with_mask=True)
    with pytest.raises(ValueError, match="head"):
        Generator(8, 5, 1, head="mirror")


def test_a_trained_image_head_starts_an_attention_head_with_a_half_open_mask():
    torch.manual_seed(0)
    image_g = Generator(8, 5, 1, head="image")
    for p in image_g.parameters():  # a "trained" G: away from the initialisation
        p.data.add_(torch.randn_like(p) * 0.1)
    attention_g = Generator(8, 5, 1, head="attention")
    load_generator_weights(attention_g, image_g)
    x, c = _faces(), torch.rand(2, 5)
    y, mask = attention_g(x, c, with_mask=True)
    assert torch.allclose(mask, torch.full_like(mask, 0.5))
    # y = M * C + (1 - M) * x with C the image head's output
    torch.testing.assert_close(y, (image_g(x, c) + x) / 2)
    with pytest.raises(ValueError, match="only image -> attention"):
        load_generator_weights(Generator(8, 5, 1, head="image"), attention_g)


def test_a_deeper_generator_starts_as_the_trained_one_and_can_learn_its_new_blocks():
    torch.manual_seed(0)
    shallow = Generator(8, 5, 2)
    for p in shallow.parameters():
        p.data.add_(torch.randn_like(p) * 0.1)
    deep = Generator(8, 5, 4)
    load_generator_weights(deep, shallow)
    x, c = _faces(), torch.rand(2, 5)
    torch.testing.assert_close(deep(x, c), shallow(x, c), rtol=0, atol=1e-6)
    deep(x, c).square().mean().backward()
    last_block = [m for m in deep.main if isinstance(m, ResidualBlock)][-1]
    new_block_scale = last_block.main[-1].weight  # an added block's closing InstanceNorm
    assert new_block_scale.grad is not None and new_block_scale.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="may add blocks, not remove"):
        load_generator_weights(shallow, deep)


def test_a_transposed_convolution_becomes_the_resize_convolution_nearest_to_it():
    torch.manual_seed(0)
    x = torch.randn(1, 1, 7, 7, dtype=torch.float64)
    resize = torch.randn(1, 1, 3, 3, dtype=torch.float64)
    target = torch.nn.functional.conv2d(torch.nn.functional.interpolate(x, scale_factor=2.0), resize, padding=1)
    # the transposed convolution that computes exactly this resize-convolution, found by least squares
    basis = torch.stack([torch.nn.functional.conv_transpose2d(x, e.view(1, 1, 4, 4), stride=2, padding=1).flatten()
                         for e in torch.eye(16, dtype=torch.float64)], 1)
    deconv, *_ = torch.linalg.lstsq(basis, target.flatten().unsqueeze(1))
    torch.testing.assert_close(basis @ deconv, target.flatten().unsqueeze(1))
    torch.testing.assert_close(resize_kernel_from_deconv(deconv.view(1, 1, 4, 4)), resize)
    # any other kernel loses its checkerboard and keeps its mean: on a flat input the transposed convolution
    # paints four phases, the converted layer their mean
    checkered = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    converted = resize_kernel_from_deconv(checkered)
    assert converted.shape == (2, 3, 3, 3)
    flat = torch.ones(1, 3, 6, 6, dtype=torch.float64)
    phases = torch.nn.functional.conv_transpose2d(flat, checkered, stride=2, padding=1)[..., 4:6, 4:6]
    out = torch.nn.functional.conv2d(torch.nn.functional.interpolate(flat, scale_factor=2.0), converted, padding=1)
    assert phases.std() > 0.5
    torch.testing.assert_close(out[..., 4:6, 4:6], phases.mean(dim=(2, 3), keepdim=True).expand(-1, -1, 2, 2))


def test_a_discriminator_at_another_image_size_keeps_its_class_head():
    torch.manual_seed(0)
    small, large = Discriminator(32, 8, 5, 3), Discriminator(48, 8, 5, 3)  # final maps 4x4 and 6x6
    load_discriminator_weights(large, small)
    for key, value in small.state_dict().items():
        if key != "conv2.weight":
            assert torch.equal(large.state_dict()[key], value)
    # the class head reads the whole final map: on a constant map it gives the same logits at either size
    features = torch.rand(1, 32, 1, 1)
    torch.testing.assert_close(large.conv2(features.expand(-1, -1, 6, 6)),
                               small.conv2(features.expand(-1, -1, 4, 4)))


@pytest.mark.parametrize("head", ["image", "residual", "attention"])
@pytest.mark.parametrize("upsample", ["deconv", "resize"])
def test_every_head_and_upsampling_travel_in_a_weights_folder(head, upsample, tmp_path):
    config = ModelConfig(LabelSpace((celeba(ATTRS),)), image_size=32, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8,
                         d_repeat_num=3, g_head=head, g_upsample=upsample)
    torch.manual_seed(0)
    G = build_generator(config)
    for p in G.parameters():  # away from the zero-initialised start, so that every head computes something
        p.data.add_(torch.randn_like(p) * 0.05)
    save_weights(tmp_path, G, config)
    loaded = load_weights(tmp_path)
    assert loaded.config.g_head == head and loaded.config.g_upsample == upsample
    x, c = _faces(), torch.rand(2, 3)
    assert torch.allclose(loaded.generator(x, c), G(x, c), atol=1e-6)
    # The inference fast path (label channels folded into the first convolution) keeps the head.
    assert torch.allclose(LabelFoldedGenerator(G)(x, c), G(x, c), atol=1e-5)


def test_difference_conditioning_reads_target_minus_source_and_keeps_the_mask_vector(tmp_path):
    space = LabelSpace((celeba(ATTRS), expressions()))
    config = ModelConfig(space, image_size=32, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=3,
                         g_condition="difference")
    torch.manual_seed(0)
    G = build_generator(config)
    plain = Generator(8, space.g_dim, 1)  # the same weights, fed the difference by hand
    plain.load_state_dict(G.state_dict())
    x = _faces()
    src = space.g_label(torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), "celeba")
    trg = space.g_label(torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]]), "celeba")
    by_hand = trg - src
    by_hand[:, -2:] = trg[:, -2:]  # the mask vector passes through: it still names the valid block
    assert by_hand[:, :3].tolist() == [[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]] and by_hand[:, -2:].tolist() == [[1, 0]] * 2
    assert torch.allclose(G(x, trg, source=src), plain(x, by_hand), atol=1e-6)
    # No change asked: the same input as for any other face's own labels.
    assert torch.allclose(G(x, src, source=src), G(x, trg, source=trg), atol=1e-6)
    with pytest.raises(ValueError, match="pass source="):
        G(x, trg)
    save_weights(tmp_path, G, config)
    loaded = load_weights(tmp_path)
    assert loaded.config.g_condition == "difference"
    assert torch.allclose(LabelFoldedGenerator(loaded.generator)(x, trg, source=src), G(x, trg, source=src),
                          atol=1e-5)
    with pytest.raises(ValueError, match="conditioning"):
        Generator(8, 5, 1, condition="sum")


def test_resize_upsampling_has_no_transposed_convolution():
    G = Generator(8, 5, 1, upsample="resize")
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules())
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in Generator(8, 5, 1).modules()) == 2


def test_diffaugment_is_reproducible_differentiable_and_keeps_what_it_should():
    x = _faces(4).requires_grad_(True)
    a = augment(x, "translation,cutout", torch.Generator().manual_seed(3))
    b = augment(x, "translation,cutout", torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, x)
    a.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    # A translation moves whole pixels: every output value is an input value of the same image, or 0.
    t = augment(x.detach(), "translation", torch.Generator().manual_seed(1))
    for i in range(4):
        values = set(x[i].detach().flatten().tolist()) | {0.0}
        assert set(t[i].flatten().tolist()) <= values
    # A cutout zeroes a square and leaves the rest exactly.
    c = augment(x.detach(), "cutout", torch.Generator().manual_seed(2))
    changed = c != x.detach()
    assert bool((c[changed] == 0).all()) and 0 < float(changed.float().mean()) < 0.2
    assert parse_policy("") == ()
    with pytest.raises(ValueError, match="unknown augmentation"):
        parse_policy("translation,blur")


def test_edit_targets_change_one_to_three_things():
    space = LabelSpace((celeba(CELEBA_ATTRIBUTES), expressions()))
    gen = torch.Generator().manual_seed(0)
    values = (torch.rand(200, 40, generator=gen) < 0.3).float()
    values[:, [CELEBA_ATTRIBUTES.index(h) for h in HAIR_COLOURS]] = 0
    values[:100, CELEBA_ATTRIBUTES.index("Black_Hair")] = 1
    target = space.random_edits(values, "celeba", gen, max_edits=3)
    hair = [CELEBA_ATTRIBUTES.index(h) for h in HAIR_COLOURS]
    other = [i for i in range(40) if i not in hair]
    edits = (target[:, other] != values[:, other]).sum(1) + (target[:, hair] != values[:, hair]).any(1).long()
    assert int(edits.min()) == 1 and int(edits.max()) == 3
    assert {1, 2, 3} <= set(edits.tolist())
    assert float(target[:, hair].sum(1).max()) <= 1  # hair colours stay exclusive
    one_hot = torch.eye(8)[torch.randint(0, 8, (50,), generator=gen)]
    new = space.random_edits(one_hot, "rafd", gen)
    assert torch.equal(new.sum(1), torch.ones(50)) and bool((new.argmax(1) != one_hot.argmax(1)).all())


def test_edit_focus_draws_that_share_of_edits_from_its_attributes():
    space = LabelSpace((celeba(CELEBA_ATTRIBUTES), expressions()))
    gen = torch.Generator().manual_seed(0)
    values = (torch.rand(4000, 40, generator=gen) < 0.3).float()
    hair = [CELEBA_ATTRIBUTES.index(h) for h in HAIR_COLOURS]
    values[:, hair] = 0
    values[:, CELEBA_ATTRIBUTES.index("Brown_Hair")] = 1
    focus = ["Male", "Smiling", "Black_Hair"]  # a hair colour stands for all of them: 3 of the 36 units

    def focus_share(target: torch.Tensor) -> float:
        changed = target != values
        in_focus = changed[:, [CELEBA_ATTRIBUTES.index("Male"), CELEBA_ATTRIBUTES.index("Smiling")]].any(1)
        return float((in_focus | changed[:, hair].any(1)).float().mean())

    plain = space.random_edits(values, "celeba", torch.Generator().manual_seed(1), 1)
    focused = space.random_edits(values, "celeba", torch.Generator().manual_seed(1), 1, focus, 0.75)
    assert focus_share(plain) == pytest.approx(3 / 36, abs=0.02)
    assert focus_share(focused) == pytest.approx(0.75 + 0.25 * 3 / 36, abs=0.03)
    # no focus: the same targets as before the option existed (runs resume and compare on the same draws)
    again = space.random_edits(values, "celeba", torch.Generator().manual_seed(1), 1, focus, 0.0)
    assert torch.equal(again, plain)
    with pytest.raises(ValueError, match="not attributes"):
        space.random_edits(values, "celeba", gen, 1, ["Beard"], 0.5)


def test_r1_and_mask_regularisers_match_their_closed_forms():
    w = torch.randn(3, 8, 8)
    real = _faces(5, 8).requires_grad_(True)
    src = (real * w).sum((1, 2, 3))  # D_src linear in x: its input gradient is w for every image
    assert float(r1_penalty(src, real)) == pytest.approx(float(w.square().sum()), rel=1e-5)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 2:] = 1.0  # a vertical edge: 4 of the 12 horizontal neighbour pairs differ
    mean, tv = mask_regularisers(mask)
    assert float(mean) == pytest.approx(0.5) and float(tv) == pytest.approx(4 / 12)


def test_option_combinations_that_would_do_nothing_are_refused():
    for bad, match in (({"r1_gamma": 1.0}, "r1-gamma"), ({"lambda_mask": 0.1}, "attention"),
                       ({"target_mode": "random"}, "target-mode"),
                       ({"edit_focus": ["Male"]}, "edit-focus"),
                       ({"target_mode": "edit", "edit_focus": ["Male"], "edit_focus_share": 1.5}, "share"),
                       ({"target_mode": "edit", "edit_focus": ["Beard"], "edit_focus_share": 0.5}, "trained"),
                       ({"penalty_of": "cells"}, "penalty-of"), ({"diffaug": "flip"}, "augmentation")):
        with pytest.raises(ValueError, match=match):
            check_options(TrainConfig(**bad))
    check_options(TrainConfig(**recipe("cpu"), celeba_dir="data"))
    with pytest.raises(ValueError, match="needs --celeba-dir"):
        check_options(TrainConfig(**recipe("cpu")))


def test_recipes_are_train_config_values():
    assert RECIPES["paper"] == {}
    for name in RECIPES:
        TrainConfig(**recipe(name))  # every key is a TrainConfig field
    assert (Path(recipe("cpu")["teacher"]) / "teacher.safetensors").is_file()  # the study's teacher ships


def test_auto_precision_takes_bf16_only_where_the_device_computes_it_and_a_cpu_runs_it_faster(monkeypatch):
    """Emulated bf16 made the cpu recipe 16x slower per iteration on an AVX2-only CPU, and native bf16 on a Xeon
    without AMX was slower than fp32 too, so presets ask for "auto", which on a CPU times both."""
    from stargan import device

    assert recipe("cpu")["precision"] == recipe("shipped-v1")["precision"] == recipe("line128")["precision"] == "auto"
    cpu = torch.device("cpu")
    with torch.inference_mode():  # as evaluation calls it; __wrapped__ measures afresh, past the cache
        assert 0.01 < device.cpu_bf16_speedup.__wrapped__() < 100
    speedup = device.cpu_bf16_speedup()  # fp32's time over bf16's on one convolution, forward and backward
    assert 0.01 < speedup < 100
    for native in (False, True):
        monkeypatch.setattr(device, "native_bf16", lambda _d, native=native: native)
        assert device.resolve_precision("auto", cpu) == ("bf16" if native and speedup >= 1.1 else "fp32")
        assert device.resolve_precision("bf16", cpu) == "bf16" and device.resolve_precision("fp32", cpu) == "fp32"


def test_the_study_options_train_end_to_end_over_a_recipe(celeba_dir, tmp_path):
    run_dir = tmp_path / "run"
    stack = ["--g-head", "residual", "--g-upsample", "resize", "--adv-loss", "log", "--r1-gamma", "1", "--gp-every",
             "4", "--target-mode", "edit", "--hair-target-share", "0.5", "--diffaug", "translation,cutout", "--d-cls-warmup", "3",
             "--g-condition", "difference"]
    args = ["--recipe", "shipped-v1", "--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS),
            "--celeba-test-size", "4", *TINY, *stack, "--n-critic", "1", "--num-iters", "6",
            "--sample-every", "0", "--checkpoint-every", "0", "--run-dir", str(run_dir)]
    assert train.main(args) == 0
    options = json.loads((run_dir / "options.json").read_text())
    assert options["recipe"] == "shipped-v1" and options["g_head"] == "residual" and options["adv_loss"] == "log"
    assert options["image_size"] == 32 and options["celeba_attrs"] == ATTRS  # flags over the preset
    assert options["hair_target_share"] == 0.5
    rows = metrics(run_dir)
    # Warm-up: D_cls alone on real faces (no adversarial term, no G step) for 3 steps, then both.
    assert all(set(r) & {"D/celeba/adv", "G/celeba/total"} == set() for r in rows[:3])
    assert all("G/celeba/total" in r and "D/celeba/adv" in r for r in rows[3:])
    assert "D/celeba/r1" in rows[4] and all(r["cpu_time"] > 0 for r in rows)
    provenance = json.loads((run_dir / "export" / "config.json").read_text())
    assert provenance["model"]["g_head"] == "residual" and provenance["provenance"]["g_updates"] == 3
    assert provenance["model"]["g_condition"] == "difference"
    assert provenance["provenance"]["cpu_time_s"] > 0
    # The demo's editor drives a difference-conditioned G: no change asked, no change made; a change, a change.
    editor = Editor(run_dir / "export", precision="fp32")
    faces = _faces(2, 32)
    source = editor.read_labels(faces)
    assert torch.equal(editor.change(faces, {}, source), torch.zeros_like(faces))
    assert float(editor.change(faces, {ATTRS[0]: 1.0, ATTRS[1]: 0.0}, source).abs().max()) > 0


def test_the_128_px_line_trains_with_a_finer_and_a_coarser_real_fake_judge(celeba_dir, tmp_path):
    run_dir = tmp_path / "line"
    args = ["--recipe", "line128", "--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS),
            "--celeba-test-size", "4", *TINY, "--d-src-depth", "2", "--d-scales", "2", "--num-iters", "4",
            "--edit-focus", "Male,Black_Hair",  # the preset's focus names attributes this small test does not train
            "--sample-every", "0", "--checkpoint-every", "0", "--run-dir", str(run_dir)]
    assert train.main(args) == 0
    rows = metrics(run_dir)
    penalised = [r["D/celeba/r1"] for r in rows if "D/celeba/r1" in r]
    assert penalised and all(math.isfinite(v) for v in penalised)
    loaded = load_weights(run_dir / "export")
    assert (loaded.config.g_down_num, loaded.config.d_src_depth, loaded.config.d_scales) == (3, 2, 2)
    assert loaded.config.g_head == "residual" and loaded.discriminator.coarse is not None
    assert loaded.config.g_condition == "difference"
    trained = loaded.provenance["train_config"]
    assert (trained["g_residual_init"], trained["target_mode"], trained["max_edits"]) == ("random", "edit", 1)
    assert (trained["adv_loss"], trained["penalty_of"], loaded.config.d_src_trunk) == ("log", "image", "own")
    assert loaded.discriminator.src_main is not None
    src, _ = loaded.discriminator(_faces(2, 32))
    assert src.shape == (2, 8 * 8 + 4 * 4)  # 32 px: the 8x8 map after two layers, then the half-size judge's 4x4


def test_the_teacher_reads_any_image_size_under_bf16_autocast():
    from stargan.teacher import INPUT_SIZE, Teacher

    teacher = Teacher(["Male", "Young"]).eval()
    for size in (INPUT_SIZE, 96, 128):  # a 96 px G once crashed here: no bf16 kernel for the antialiased resize
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = teacher(_faces(2, size))
        assert logits.shape == (2, 2) and torch.isfinite(logits.float()).all()


def test_a_teacher_joins_g_loss_and_is_not_a_judge(celeba_dir, tmp_path):
    from stargan.judges import DEFAULT_JUDGES
    from stargan.teacher import BlockTeacher, Teacher, load_teacher, save_teacher

    torch.manual_seed(0)
    teacher = Teacher(ATTRS[::-1])  # its own name order: BlockTeacher reorders to the block's
    save_teacher(teacher, tmp_path / "teacher", {"accuracy_mean": 0.5})
    loaded = load_teacher(tmp_path / "teacher")
    x = _faces(3, 48)
    assert torch.allclose(BlockTeacher(loaded, ATTRS)(x), teacher.eval()(x)[:, [2, 1, 0]], atol=1e-2)
    with pytest.raises(ValueError, match="does not know"):
        BlockTeacher(loaded, ["Smiling"])
    with pytest.raises(FileNotFoundError, match="stargan.teacher"):
        load_teacher(DEFAULT_JUDGES)  # the judges' folder holds no teacher, and a judge cannot be loaded as one
    run_dir = tmp_path / "run"
    args = ["--recipe", "cpu", "--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS),
            "--celeba-test-size", "4", *TINY, "--n-critic", "1", "--num-iters", "2", "--sample-every", "0",
            "--checkpoint-every", "0", "--teacher", str(tmp_path / "teacher"), "--run-dir", str(run_dir)]
    assert train.main(args) == 0
    assert all(r["G/celeba/teacher"] > 0 for r in metrics(run_dir) if "G/celeba/total" in r)


def test_hair_outside_face_reads_hair_colours_with_the_face_kept(celeba_dir, tmp_path):
    """--hair-outside-face: D_cls and the teacher read the hair-colour logits from G's change outside the face core
    only, so two Gs that differ only on the face earn the same hair colour; other attributes still see the face."""
    from stargan.losses import g_loss
    from stargan.models import Discriminator
    from stargan.regions import face_core
    from stargan.teacher import BlockTeacher, Teacher

    class Paint(torch.nn.Module):  # G(x, c) = x + a fixed paint, whatever the target
        def __init__(self, paint: torch.Tensor) -> None:
            super().__init__()
            self.paint = paint

        def forward(self, x, c, source=None):
            return x + self.paint

    torch.manual_seed(0)
    size = 32
    core = torch.from_numpy(face_core(recipe("cpu")["template"], size))
    hair_view = ((1 - core).view(1, 1, size, size), [0, 1])  # Black_Hair, Blond_Hair: the block's first two
    paint = torch.rand(1, 3, size, size) * 0.2
    tinted = paint + 0.5 * (core > 0.99)  # the same change plus a tint on the face core alone
    real = _faces(4, size)

    def terms(names, G, view):
        labels = LabelSpace((celeba(names),))
        values = torch.tensor([[1.0, 0.0, 1.0][: len(names)]] * 4)
        torch.manual_seed(1)
        D, teacher = Discriminator(size, 8, labels.d_dim, 3), BlockTeacher(Teacher(names), names).eval()
        with torch.no_grad():
            c = labels.g_label(values)
            return g_loss(G, D, real, c, c, values, labels, teacher=teacher, lambda_teacher=1.0, hair_view=view)[1]

    hair = ["Black_Hair", "Blond_Hair"]
    for view, same in ((None, False), (hair_view, True)):
        plain, face_tinted = terms(hair, Paint(paint), view), terms(hair, Paint(tinted), view)
        for k in ("cls", "teacher"):
            assert bool(torch.isclose(plain[k], face_tinted[k], atol=1e-6, rtol=0)) == same, (k, view is None)
    with_male = [terms(hair + ["Male"], Paint(p), hair_view)["cls"] for p in (paint, tinted)]
    assert not torch.isclose(*with_male, atol=1e-6, rtol=0)  # Male is still read from the whole face

    class LabelPaint(Paint):  # paints only for the first label, so G's change differs between labels
        def forward(self, x, c, source=None):
            return x + self.paint * c[:, :1].view(-1, 1, 1, 1)

    labels = LabelSpace((celeba(hair),))
    org, trg = torch.tensor([[0.0, 1.0]] * 4), torch.tensor([[1.0, 0.0]] * 4)
    D = Discriminator(size, 8, labels.d_dim, 3)
    with torch.no_grad():  # the colour-noise penalty reads G's change, whatever view D reads hair colour from
        noise = [g_loss(LabelPaint(paint), D, real, labels.g_label(org), labels.g_label(trg), trg, labels,
                        hair_view=view, lambda_colour_noise=1.0)[1]["colour_noise"] for view in (None, hair_view)]
    assert noise[0] > 0 and torch.isclose(*noise)
    with pytest.raises(ValueError, match="hair colour"):
        check_options(TrainConfig(celeba_dir=str(celeba_dir), celeba_attrs=["Male"], hair_outside_face=True))
    run_dir = tmp_path / "run"
    args = ["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4", *TINY,
            "--n-critic", "1", "--num-iters", "2", "--sample-every", "0", "--checkpoint-every", "0",
            "--hair-outside-face", "--run-dir", str(run_dir)]
    assert train.main(args) == 0
    assert json.loads((run_dir / "options.json").read_text())["hair_outside_face"] is True


def test_colour_noise_counts_chroma_blotches_not_smooth_colour_or_light():
    """The colour-noise penalty: a chroma checkerboard scores high; luminance patterns and a constant or slowly
    varying colour score (nearly) nothing; its smooth part is OpenCV's Gaussian blur (as colour_noise.py was)."""
    import cv2

    from stargan.losses import chroma_parts, colour_noise

    size = 32
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    checker = ((yy + xx) % 2).float() * 2 - 1  # +-1 every pixel
    blotches = torch.stack([0.1 * checker, torch.zeros_like(checker), -0.1 * checker])[None]
    light = (0.3 * checker).expand(1, 3, size, size)  # the same pattern in luminance only
    slow = torch.cos(torch.pi * xx / (size - 1)).float()
    tint = torch.stack([0.1 * slow, torch.zeros_like(slow), -0.1 * slow])[None] + torch.tensor([0.05, 0, 0]).view(3, 1, 1)
    assert colour_noise(blotches) > 0.05
    assert colour_noise(light) < 1e-3
    assert colour_noise(tint) < 0.03 * colour_noise(blotches)  # the blur keeps 98% of a half-cosine over 32 px
    patches = blotches.repeat_interleave(8, 2).repeat_interleave(8, 3)[..., :size, :size]  # 8-px squares
    assert colour_noise(patches, sigma=4.0) > 1.5 * colour_noise(patches, sigma=2.0)  # a wider blur counts them
    change = torch.rand(2, 3, size, size) - 0.5
    smooth, rest = chroma_parts(change)
    chroma = smooth + rest
    expected = cv2.GaussianBlur(chroma[1, 0].numpy(), (0, 0), 2.0)
    assert torch.allclose(smooth[1, 0], torch.from_numpy(expected), atol=1e-5)


def test_identity_loss_asks_g_to_return_a_face_for_its_own_labels(celeba_dir, tmp_path):
    """--lambda-identity: the term is the L1 between G(x, c_org) and x, whatever G does for other labels; the
    other terms are as without it; a short training run logs it."""
    from stargan.losses import g_loss
    from stargan.models import Discriminator

    class Tinted(torch.nn.Module):  # G(x, c) = x + a tint scaled by the second label, plus a constant offset
        def __init__(self, offset: float) -> None:
            super().__init__()
            self.offset = offset

        def forward(self, x, c, source=None):
            return x + 0.3 * c[:, 1:2].view(-1, 1, 1, 1) + self.offset

    torch.manual_seed(0)
    labels = LabelSpace((celeba(["Male", "Young"]),))
    real = _faces(4, 16)
    org, trg = torch.tensor([[1.0, 0.0]] * 4), torch.tensor([[1.0, 1.0]] * 4)
    D = Discriminator(16, 8, labels.d_dim, 3)

    def terms(G, weight):
        with torch.no_grad():
            return g_loss(G, D, real, labels.g_label(org), labels.g_label(trg), trg, labels,
                          lambda_identity=weight)[1]

    assert terms(Tinted(0.0), 1.0)["identity"] < 1e-6  # edits for other labels cost nothing
    assert torch.isclose(terms(Tinted(0.2), 1.0)["identity"], torch.tensor(0.2))  # off by 0.2 everywhere
    without, with_it = terms(Tinted(0.2), 0.0), terms(Tinted(0.2), 1.0)
    assert "identity" not in without
    for k in ("adv", "cls", "rec"):
        assert torch.isclose(without[k], with_it[k], atol=1e-6)
    run_dir = tmp_path / "run"
    args = ["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4", *TINY,
            "--n-critic", "1", "--num-iters", "2", "--sample-every", "0", "--checkpoint-every", "0",
            "--lambda-identity", "5", "--run-dir", str(run_dir)]
    assert train.main(args) == 0
    assert all(r["G/celeba/identity"] > 0 for r in metrics(run_dir) if "G/celeba/total" in r)


def test_colour_noise_joins_g_loss_on_the_change_the_demo_pastes(celeba_dir, expression_dir, tmp_path):
    """--lambda-colour-noise: the term reads G(x, c_trg) - G(x, c_org), so a G whose noise ignores the label costs
    nothing, a G whose blotches follow the label does, and the other terms are as without it."""
    from stargan.losses import g_loss
    from stargan.models import Discriminator

    size = 16
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    checker = (((yy + xx) % 2).float() * 2 - 1) * torch.tensor([0.1, 0.0, -0.1]).view(3, 1, 1)

    class Blotchy(torch.nn.Module):  # G(x, c) = x + blotches, scaled by the first label when ``follow``
        def __init__(self, follow: bool) -> None:
            super().__init__()
            self.follow = follow

        def forward(self, x, c, source=None):
            scale = c[:, :1].view(-1, 1, 1, 1) if self.follow else 1.0
            return x + scale * checker

    labels = LabelSpace((celeba(["Male", "Young"]),))
    org, trg = torch.tensor([[0.0, 1.0]] * 2), torch.tensor([[1.0, 1.0]] * 2)
    real = _faces(2, size)
    torch.manual_seed(0)
    D = Discriminator(size, 8, labels.d_dim, 3)

    def terms(G, weight):
        torch.manual_seed(1)
        return g_loss(G, D, real, labels.g_label(org), labels.g_label(trg), trg, labels,
                      lambda_colour_noise=weight)[1]

    assert terms(Blotchy(False), 1.0)["colour_noise"] < 1e-3
    assert terms(Blotchy(True), 1.0)["colour_noise"] > 0.05
    without, with_it = terms(Blotchy(True), 0.0), terms(Blotchy(True), 1.0)
    assert "colour_noise" not in without
    for k in ("adv", "cls", "rec"):
        assert torch.isclose(without[k], with_it[k], atol=1e-6)
    run_dir = tmp_path / "run"
    args = ["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4", *TINY,
            "--expression-dir", str(expression_dir), "--n-critic", "1", "--num-iters", "4", "--sample-every", "0",
            "--checkpoint-every", "0", "--lambda-colour-noise", "10", "--colour-noise-where", "skin",
            "--run-dir", str(run_dir)]
    assert train.main(args) == 0
    rows = metrics(run_dir)
    assert all(r["G/celeba/colour_noise"] > 0 for r in rows if "G/celeba/total" in r)
    # The demo pastes an expression's change as luminance only, so its chroma goes unpenalised.
    expression_steps = [r for r in rows if "G/rafd/total" in r]
    assert expression_steps and not any("G/rafd/colour_noise" in r for r in expression_steps)
    with pytest.raises(ValueError, match="colour-noise-where"):
        check_options(TrainConfig(colour_noise_where="lips", lambda_colour_noise=1.0))
    with pytest.raises(ValueError, match="--lambda-colour-noise"):  # shaping a penalty that is off does nothing
        check_options(TrainConfig(colour_noise_where="skin"))
    with pytest.raises(ValueError, match="more than 0"):
        check_options(TrainConfig(colour_noise_sigma=0.0, lambda_colour_noise=1.0))


def test_the_study_table_shows_the_demos_related_edits_beside_the_lone_flips(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("recipe_study", Path(__file__).resolve().parents[1] / "benchmarks"
                                                  / "recipe_study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    monkeypatch.setattr(study, "STUDY", tmp_path)
    labels = [n for _, names in study.PANELS for n in names]
    point = {"step": 200, "g_updates": 100, "cpu_minutes": 12.5, "success": {n: 0.5 for n in labels},
             "success_related": {"Male": 0.8, "Smiling": 0.9}, "preservation": {n: 0.95 for n in labels}}
    (tmp_path / "run.json").write_text(json.dumps({"run": "/runs/ft", "points": [point]}))
    row = study.table().splitlines()[-1]
    assert row == "| ft | 200 | 100 | 12.5 | 50.0 | 50.0 (80.0) | 50.0 | 50.0 (90.0) | 50.0 | 50.0 | 95.0 |"


def test_uniform_hair_targets_give_every_colour_its_share():
    space = LabelSpace((celeba(CELEBA_ATTRIBUTES), expressions()))
    gen = torch.Generator().manual_seed(0)
    hair = [CELEBA_ATTRIBUTES.index(h) for h in HAIR_COLOURS]
    values = torch.zeros(4000, 40)
    values[:, CELEBA_ATTRIBUTES.index("Black_Hair")] = 1  # every face black-haired: gray never comes up alone
    values[:, CELEBA_ATTRIBUTES.index("Male")] = 1
    target = space.uniform_hair(values, "celeba", gen, share=0.5)
    shares = target[:, hair].mean(0)
    assert shares[HAIR_COLOURS.index("Gray_Hair")] == pytest.approx(0.125, abs=0.02)
    assert shares[HAIR_COLOURS.index("Black_Hair")] == pytest.approx(0.5 + 0.125, abs=0.02)
    assert torch.equal(target[:, hair].sum(1), torch.ones(4000))  # exclusive
    others = [i for i in range(40) if i not in hair]
    assert torch.equal(target[:, others], values[:, others])  # only the hair changes
    assert torch.equal(space.uniform_hair(values, "celeba", gen, share=0.0), values)
    one_hot = torch.eye(8)[:5]
    assert torch.equal(space.uniform_hair(one_hot, "rafd", gen, share=1.0), one_hot)
    with pytest.raises(ValueError, match="hair-target-share"):
        check_options(TrainConfig(hair_target_share=1.5))
