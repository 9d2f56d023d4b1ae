"""Core library: networks against the original layout, label space, losses, and a learning test."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from stargan.config import ModelConfig
from stargan.domains import CELEBA_ATTRIBUTES, RAFD_EXPRESSIONS, RELATED_ATTRIBUTES, LabelSpace, celeba, expressions
from stargan.losses import classification, d_loss, g_loss, gradient_penalty, interpolate, reconstruction
from stargan.models import Discriminator, Generator, build_discriminator, build_generator, count_parameters

from conftest import PROJECT_ROOT, data_path

REFERENCE = PROJECT_ROOT.parent / "shared" / "reference" / "official_stargan_state_dict.txt"


def official_layout(prefix: str) -> dict[str, tuple[int, ...]]:
    if not REFERENCE.is_file():
        pytest.skip(f"reference layout not found at {REFERENCE}")
    out = {}
    for line in REFERENCE.read_text().splitlines():
        if line.startswith("# Config B"):
            break
        if line.startswith(prefix + "."):
            key, shape, _ = line.split("\t")
            out[key[len(prefix) + 1:]] = tuple(int(v) for v in re.findall(r"\d+", shape))
    return out


def test_parameter_counts_match_the_paper():
    config = ModelConfig()
    assert count_parameters(build_generator(config)) == 8_430_528
    assert count_parameters(build_discriminator(config)) == 44_762_048


def test_state_dict_matches_the_original_minus_running_statistics():
    config = ModelConfig()
    for prefix, module in (("G", build_generator(config)), ("D", build_discriminator(config))):
        expected = {k: v for k, v in official_layout(prefix).items()
                    if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
        ours = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        assert ours == expected


def test_joint_layout_matches_config_b():
    labels = LabelSpace((celeba(), expressions()))
    config = ModelConfig(label_space=labels)
    assert build_generator(config).main[0].weight.shape == (64, 18, 7, 7)
    assert build_discriminator(config).conv2.weight.shape == (13, 2048, 2, 2)


@pytest.mark.parametrize("size", [128, 256])
def test_generator_output_shape_and_range(size):
    G = Generator(conv_dim=8, c_dim=5, repeat_num=2)
    y = G(torch.randn(2, 3, size, size) * 3, torch.rand(2, 5))
    assert y.shape == (2, 3, size, size)
    assert y.min() >= -1 and y.max() <= 1


def test_discriminator_rejects_an_image_size_it_cannot_handle():
    with pytest.raises(ValueError, match="image_size 100"):
        Discriminator(image_size=100, conv_dim=8, c_dim=5, repeat_num=6)
    D = Discriminator(image_size=256, conv_dim=4, c_dim=5, repeat_num=6)
    src, cls = D(torch.randn(1, 3, 256, 256))
    assert src.shape == (1, 1, 4, 4) and cls.shape == (1, 5)


def test_a_generator_with_three_stages_works_at_an_eighth_of_the_side():
    G = Generator(conv_dim=8, c_dim=5, repeat_num=2, upsample="resize", down_num=3)
    blocks = [m for m in G.main if type(m).__name__ == "ResidualBlock"]
    seen = []
    for block in blocks:
        block.register_forward_hook(lambda m, i, o: seen.append(o.shape) and None)
    y = G(torch.randn(2, 3, 128, 128), torch.rand(2, 5))
    assert y.shape == (2, 3, 128, 128)
    assert seen == [(2, 64, 16, 16)] * 2  # width 8 doubled three times, 128 / 8
    with pytest.raises(ValueError, match="down_num 0"):
        Generator(conv_dim=8, c_dim=5, repeat_num=1, down_num=0)


def test_discriminator_reads_real_or_fake_after_fewer_layers_when_asked():
    D = Discriminator(image_size=128, conv_dim=4, c_dim=5, repeat_num=6, src_depth=4)
    src, cls = D(torch.randn(2, 3, 128, 128))
    assert src.shape == (2, 1, 8, 8) and cls.shape == (2, 5)
    assert D.conv1.weight.shape == (1, 32, 3, 3)  # 4 doubled three times
    paper = Discriminator(image_size=128, conv_dim=4, c_dim=5, repeat_num=6)
    assert paper(torch.randn(1, 3, 128, 128))[0].shape == (1, 1, 2, 2)
    with pytest.raises(ValueError, match="src_depth 7"):
        Discriminator(image_size=128, conv_dim=4, c_dim=5, repeat_num=6, src_depth=7)


def test_a_second_real_fake_judge_at_half_resolution():
    D = Discriminator(image_size=128, conv_dim=4, c_dim=5, repeat_num=6, src_depth=4, scales=2)
    x = torch.randn(2, 3, 128, 128, requires_grad=True)
    src, cls = D(x)
    assert src.shape == (2, 8 * 8 + 4 * 4) and cls.shape == (2, 5)  # both maps, flattened and joined
    (grad,) = torch.autograd.grad(src.sum(), x)  # what the gradient penalty takes
    assert grad.shape == x.shape and bool(grad.abs().sum() > 0)
    one = Discriminator(image_size=128, conv_dim=4, c_dim=5, repeat_num=6, src_depth=4)
    assert set(D.state_dict()) - set(one.state_dict()) == {k for k in D.state_dict() if k.startswith("coarse.")}
    with pytest.raises(ValueError, match="scales 3"):
        Discriminator(image_size=128, conv_dim=4, c_dim=5, repeat_num=6, scales=3)


def test_a_half_resolution_judge_grown_from_one_scale_starts_as_the_trained_judge_on_the_half_size_face():
    from stargan.models import load_discriminator_weights

    x = torch.randn(2, 3, 128, 128)
    for trunk in ("own", "shared"):
        one = Discriminator(image_size=128, conv_dim=4, c_dim=5, repeat_num=5, src_depth=4, src_trunk=trunk)
        two = Discriminator(image_size=128, conv_dim=4, c_dim=5, repeat_num=5, src_depth=4, scales=2, src_trunk=trunk)
        load_discriminator_weights(two, one)
        (src1, cls1), (src2, cls2) = one(x), two(x)
        judge = one.src_main if trunk == "own" else one.main[:8]
        half = one.conv1(judge(torch.nn.functional.avg_pool2d(x, 2)))
        assert torch.allclose(src2[:, :64], src1.flatten(1)) and torch.allclose(cls2, cls1)
        assert torch.allclose(src2[:, 64:], half.flatten(1), atol=1e-6)
        back = Discriminator(image_size=128, conv_dim=4, c_dim=5, repeat_num=5, src_depth=4, src_trunk=trunk)
        load_discriminator_weights(back, two)  # and back to one scale: the full-resolution judge kept
        assert torch.allclose(back(x)[0], src1)


def test_a_real_fake_judge_on_its_own_layers_starts_as_the_shared_one_and_learns_apart():
    from stargan.models import load_discriminator_weights

    shared = Discriminator(image_size=64, conv_dim=4, c_dim=5, repeat_num=5, src_depth=3)
    own = Discriminator(image_size=64, conv_dim=4, c_dim=5, repeat_num=5, src_depth=3, src_trunk="own")
    load_discriminator_weights(own, shared)
    x = torch.randn(2, 3, 64, 64)
    for a, b in zip(shared(x), own(x)):
        assert torch.allclose(a, b, atol=1e-6)  # a copy of the shared layers: the same outputs at the start
    src, cls = own(x)
    cls.sum().backward()  # the classification loss no longer reaches the real/fake judge's layers
    assert all(p.grad is None for p in own.src_main.parameters()) and own.main[0].weight.grad is not None
    own.zero_grad()
    own(x)[0].sum().backward()
    assert own.main[0].weight.grad is None and own.src_main[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="its own"):
        load_discriminator_weights(shared, own)
    with pytest.raises(ValueError, match="src_trunk"):
        Discriminator(image_size=64, conv_dim=4, c_dim=5, repeat_num=5, src_trunk="separate")


def test_a_weights_folder_keeps_the_judge_on_its_own_layers(tmp_path):
    from stargan.weights import load_weights, save_weights

    config = ModelConfig(image_size=64, g_conv_dim=4, g_repeat_num=1, d_conv_dim=4, d_repeat_num=5, d_src_depth=3,
                         d_src_trunk="own")
    D = build_discriminator(config)
    save_weights(tmp_path / "w", build_generator(config), config, discriminator=D)
    loaded = load_weights(tmp_path / "w")
    assert loaded.config.d_src_trunk == "own"
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(loaded.discriminator(x)[0], D(x)[0], atol=1e-6)
    assert "on its own layers" in (tmp_path / "w" / "README.md").read_text()


def test_eval_mode_equals_train_mode():
    G = Generator(conv_dim=8, c_dim=5, repeat_num=2)
    x, c = torch.randn(3, 3, 64, 64), torch.rand(3, 5)
    G.train()
    a = G(x, c)
    G.eval()
    assert torch.equal(a, G(x, c))


def test_config_round_trips_through_json():
    config = ModelConfig(label_space=LabelSpace((celeba(CELEBA_ATTRIBUTES), expressions())), image_size=64,
                         g_conv_dim=32, g_repeat_num=4, d_conv_dim=32, d_repeat_num=5)
    assert ModelConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="unknown model config field"):
        ModelConfig.from_dict({**config.to_dict(), "bogus": 1})


# ---- label space --------------------------------------------------------------------------------------------
def test_names_in_official_order():
    assert len(CELEBA_ATTRIBUTES) == 40 and CELEBA_ATTRIBUTES[0] == "5_o_Clock_Shadow" and CELEBA_ATTRIBUTES[-1] == "Young"
    assert RAFD_EXPRESSIONS == ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")


def test_mask_vector_layout():
    labels = LabelSpace((celeba(), expressions()))
    assert (labels.g_dim, labels.d_dim) == (15, 13)
    attrs = torch.tensor([[1.0, 0, 0, 1, 1]])
    assert labels.g_label(attrs, "celeba").tolist() == [[1, 0, 0, 1, 1] + [0] * 8 + [1, 0]]
    happy = labels.set_category(1, "happy")
    assert labels.g_label(happy, "rafd").tolist() == [[0] * 5 + [0, 0, 0, 0, 1, 0, 0, 0] + [0, 1]]
    single = LabelSpace((celeba(),))
    assert single.g_dim == 5 and single.g_label(attrs).tolist() == attrs.tolist()


def test_hair_colours_stay_exclusive():
    labels = LabelSpace((celeba(),))  # Black, Blond, Brown, Male, Young
    values = torch.tensor([[1.0, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    blond = labels.set_hair(values, "Blond_Hair")
    assert blond[:, :3].tolist() == [[0, 1, 0], [0, 1, 0]] and blond[:, 3:].tolist() == values[:, 3:].tolist()
    flipped = labels.flip(values, "Brown_Hair")  # turns brown on for row 0: black must go off
    assert flipped[0, :3].tolist() == [0, 0, 1] and flipped[1, :3].tolist() == [0, 0, 0]
    for name, target in labels.single_domain_targets("celeba", values):
        assert (target[:, :3].sum(1) <= 1).all(), name
    slider = labels.values({"Blond_Hair": 0.8}, base=torch.tensor([1.0, 0, 0, 1, 0]))
    assert slider[1] == pytest.approx(0.8) and slider[0] == pytest.approx(0.2)


def test_intensities_and_expression_mixtures():
    labels = LabelSpace((celeba(), expressions()))
    assert labels.values({"Male": 0.3}).tolist() == pytest.approx([0, 0, 0, 0.3, 0])
    mix = labels.values({"happy": 1.0, "surprised": 1.0})
    assert mix.sum() == pytest.approx(1) and mix[4] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        labels.values({"Male": 1.5})
    with pytest.raises(KeyError, match="separate calls"):
        labels.values({"Male": 1.0, "happy": 1.0})
    with pytest.raises(KeyError, match="Blue_Hair"):
        celeba(["Blue_Hair"])


def test_related_attributes_follow_an_edit_as_far_as_it_goes():
    labels = LabelSpace((celeba(CELEBA_ATTRIBUTES),))
    woman = labels.values({"Heavy_Makeup": 1, "Wearing_Lipstick": 1, "No_Beard": 1, "Young": 1, "Blond_Hair": 1})
    man = labels.values({"Male": 1, "Goatee": 1, "Mustache": 1, "Black_Hair": 1})

    def related(source, settings):
        return labels.with_related(labels.values(settings, base=source), source, list(settings))

    def value(row, name):
        return float(row[CELEBA_ATTRIBUTES.index(name)])

    full = related(woman, {"Male": 1.0})
    assert value(full, "Heavy_Makeup") == 0 and value(full, "Wearing_Lipstick") == 0
    assert value(full, "No_Beard") == 1 and value(full, "Young") == 1 and value(full, "Blond_Hair") == 1
    assert value(related(woman, {"Male": 0.5}), "Wearing_Lipstick") == pytest.approx(0.5)  # half-way slider
    assert value(related(woman, {"Male": 1.0, "Wearing_Lipstick": 1.0}), "Wearing_Lipstick") == 1  # set stays set
    assert related(woman, {"Male": 0.0}).tolist() == woman.tolist()  # no move, nothing follows
    female = related(man, {"Male": 0.0})
    assert value(female, "Goatee") == 0 and value(female, "Mustache") == 0 and value(female, "No_Beard") == 1
    smile = related(woman, {"Smiling": 1.0})
    assert value(smile, "High_Cheekbones") == 1 and value(smile, "Mouth_Slightly_Open") == 1
    assert related(woman, {"Blond_Hair": 0.0}).sum() == woman.sum() - 1  # no rules for hair: only it changes
    batch = labels.with_related(torch.stack([woman, man]), torch.stack([woman, man]), ["Male"])
    assert batch.tolist() == [woman.tolist(), man.tolist()]


def test_each_related_attribute_rule_holds_for_most_real_faces_and_a_lone_flip_is_rare():
    """The rules are CelebA's own statistics: among training faces with the edited value, at least 3 in 4 have
    the related attribute's value; and the combination a lone gender or smile flip asks for is rare."""
    folder = data_path("celeba_hq_128")
    lines = (folder / "list_attr_celeba.txt").read_text().split("\n")
    names = lines[1].split()
    split = dict(line.split() for line in (folder / "list_eval_partition.txt").read_text().splitlines() if line.strip())
    rows = [line.split() for line in lines[2:] if line.strip() and split[line.split()[0]] == "0"]
    faces = torch.tensor([[int(v) > 0 for v in row[1:]] for row in rows], dtype=torch.float32)
    for (name, side), follow in RELATED_ATTRIBUTES.items():
        having = faces[faces[:, names.index(name)] == side]
        for other, value in follow.items():
            share = float((having[:, names.index(other)] == value).float().mean())
            assert share >= 0.75, (name, side, other, share)
    male, lipstick = faces[:, names.index("Male")] == 1, faces[:, names.index("Wearing_Lipstick")] == 1
    assert float((male & lipstick).float().mean()) < 0.01 < float((~male & lipstick).float().mean())


# ---- losses ---------------------------------------------------------------------------------------------------
def test_gradient_penalty_matches_its_closed_form():
    # critic(x) = sum(w * x): its gradient is w everywhere, so the penalty is (||w|| - 1)^2.
    w = torch.randn(3, 8, 8)
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    x_hat = interpolate(real, fake)
    out = (x_hat * w).flatten(1).sum(1)
    expected = (w.norm() - 1) ** 2
    assert gradient_penalty(out, x_hat).item() == pytest.approx(expected.item(), rel=1e-5)
    # the fp16 scaler's scale must not change the value
    out = (x_hat * w).flatten(1).sum(1)
    assert gradient_penalty(out, x_hat, grad_scale=1024.0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_classification_ignores_the_other_dataset():
    labels = LabelSpace((celeba(), expressions()))
    logits = torch.randn(4, 13, requires_grad=True)
    loss = classification(logits, labels.set_category(4, "sad"), labels, "rafd")
    loss.backward()
    assert torch.all(logits.grad[:, :5] == 0) and torch.any(logits.grad[:, 5:] != 0)
    logits.grad = None
    classification(logits, torch.ones(4, 5), labels, "celeba").backward()
    assert torch.all(logits.grad[:, 5:] == 0) and torch.any(logits.grad[:, :5] != 0)


def test_binary_classification_is_summed_over_attributes_and_averaged_over_the_batch():
    labels = LabelSpace((celeba(),))
    loss = classification(torch.zeros(6, 5), torch.ones(6, 5), labels)
    assert loss.item() == pytest.approx(5 * torch.log(torch.tensor(2.0)).item())


class Identity(nn.Module):
    def forward(self, x, c, source=None):  # G's call: target labels, and the face's own (source)
        return x


def test_reconstruction_is_zero_for_an_identity_generator():
    labels = LabelSpace((celeba(),))
    D = Discriminator(image_size=32, conv_dim=4, c_dim=5, repeat_num=3)
    x, v = torch.rand(2, 3, 32, 32) * 2 - 1, torch.ones(2, 5)
    assert reconstruction(x, Identity()(Identity()(x, v), v)).item() == 0
    _, terms = g_loss(Identity(), D, x, labels.g_label(v), labels.g_label(1 - v), 1 - v, labels)
    assert terms["rec"].item() == 0


def test_both_adversarial_losses_compute():
    labels = LabelSpace((celeba(),))
    D = Discriminator(image_size=32, conv_dim=4, c_dim=5, repeat_num=3)
    x, v = torch.randn(2, 3, 32, 32), torch.ones(2, 5)
    for adv in ("wgan-gp", "log"):
        total, terms = d_loss(D, x, x.flip(0), v, labels, adv=adv)
        assert torch.isfinite(total) and ("gp" in terms) == (adv == "wgan-gp")
    with pytest.raises(ValueError, match="unknown adversarial loss"):
        d_loss(D, x, x, v, labels, adv="hinge")


def test_the_penalty_of_each_image_mean_is_the_map_sums_over_the_cell_count_squared():
    """A D whose 8x8 real/fake map repeats one linear score: the map's sum has 64 times the score's input gradient,
    so its penalties are 64^2 times those of each image's mean cell (which is the score itself)."""
    labels = LabelSpace((celeba(["Male"]),))
    w = torch.randn(1, 3, 16, 16) * 0.01

    class RepeatedScore(nn.Module):
        def forward(self, x):
            score = (x * w).sum((1, 2, 3))
            return score.view(-1, 1, 1, 1).expand(-1, 1, 8, 8), torch.zeros(x.size(0), 1)

    x, fake, v = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.ones(2, 1)
    slope = float(w.norm())
    for adv, term, of_image in (("wgan-gp", "gp", (slope - 1) ** 2), ("log", "r1", slope ** 2)):
        extra = {"r1_gamma": 1.0} if adv == "log" else {}
        _, image = d_loss(RepeatedScore(), x, fake, v, labels, adv=adv, penalty_of="image", **extra)
        _, default = d_loss(RepeatedScore(), x, fake, v, labels, adv=adv, **extra)
        _, summed = d_loss(RepeatedScore(), x, fake, v, labels, adv=adv, penalty_of="map", **extra)
        assert float(image[term]) == pytest.approx(of_image, rel=1e-4)
        of_map = (64 * slope - 1) ** 2 if term == "gp" else (64 * slope) ** 2
        assert float(summed[term]) == pytest.approx(of_map, rel=1e-4)
        assert float(default[term]) == float(summed[term])  # the original code's penalty stays the default
    with pytest.raises(ValueError, match="penalty_of"):
        d_loss(RepeatedScore(), x, fake, v, labels, penalty_of="cells")


def test_the_losses_learn_a_two_domain_translation():
    """Domain = colour: red images (label 0) and blue images (label 1). After a few hundred steps at tiny
    width, G must turn a held-out red image blue when asked, and keep it red when asked for red."""
    torch.manual_seed(0)
    labels = LabelSpace((celeba(["Blond_Hair"]),))
    G = Generator(conv_dim=8, c_dim=1, repeat_num=1)
    D = Discriminator(image_size=16, conv_dim=8, c_dim=1, repeat_num=3)
    opt_g = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.5, 0.999))

    def batch(n):
        domain = (torch.rand(n) < 0.5).float()
        img = torch.full((n, 3, 16, 16), -0.8) + 0.1 * torch.randn(n, 3, 16, 16)
        img[:, 0] += 1.6 * (1 - domain).view(-1, 1, 1)  # red when 0
        img[:, 2] += 1.6 * domain.view(-1, 1, 1)  # blue when 1
        return img.clamp(-1, 1), domain.view(-1, 1)

    def blueness(img):  # the statistic that defines the domain
        return (img[:, 2] - img[:, 0]).mean().item()

    for step in range(300):
        x, v = batch(16)
        trg = v[torch.randperm(16)]
        with torch.no_grad():
            fake = G(x, labels.g_label(trg))
        loss, _ = d_loss(D, x, fake, v, labels)
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        if step % 2 == 0:
            D.requires_grad_(False)
            loss, _ = g_loss(G, D, x, labels.g_label(v), labels.g_label(trg), trg, labels)
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()
            D.requires_grad_(True)
    torch.manual_seed(123)
    x, v = batch(64)
    red = x[v[:, 0] == 0]
    with torch.no_grad():
        to_blue = G(red, labels.g_label(torch.ones(len(red), 1)))
        stay_red = G(red, labels.g_label(torch.zeros(len(red), 1)))
    assert blueness(red) < -1.0
    assert blueness(to_blue) > 0.5, blueness(to_blue)
    assert blueness(stay_red) < -0.5, blueness(stay_red)


def test_smooth_reconstruction_has_no_pull_at_zero_and_is_the_l1_far_from_it():
    x = torch.zeros(1, 3, 4, 4)
    for size, l1_grad, smooth_grad in ((1e-4, 1.0, 0.01), (1.0, 1.0, 0.99995)):
        y = torch.full_like(x, size, requires_grad=True)
        for smooth, expected in ((0.0, l1_grad), (0.01, smooth_grad)):
            y.grad = None
            reconstruction(x, y, smooth).backward()
            # per element, times the element count (the loss is a mean)
            assert (y.grad * x.numel()).mean().item() == pytest.approx(expected, rel=1e-3)
    far = torch.full_like(x, 1.0)
    assert reconstruction(x, far, 0.01).item() == pytest.approx(1.0 - 0.01, abs=1e-4)

