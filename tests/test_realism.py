"""The realism measure (stargan.realism) on answers known in advance, with real held-out faces and the committed
attribute judge: real target faces close the gap, unchanged faces close none of it, blur and colour blotches
move the faces away from real target faces, and sets too small to mean anything are refused."""

from __future__ import annotations

import json

import pytest
import torch

from stargan import evaluate as ev
from stargan import realism
from stargan.config import ModelConfig
from stargan.domains import CELEBA_ATTRIBUTES, LabelSpace, celeba, expressions
from stargan.evaluate import HEADLINE_EDITS, edit_sets, load_test_faces
from stargan.judges import ATTRIBUTE_JUDGE, DEFAULT_JUDGES, EvaluationError, load_judge
from stargan.models import build_discriminator, build_generator
from stargan.weights import save_weights

from conftest import data_path

FACES = 200


@pytest.fixture(scope="module")
def female_male():
    """Held-out female faces (S) and two disjoint sets of male faces (T and another T), 128 px, and the judge."""
    root = data_path("celeba_hq_128")
    if not (DEFAULT_JUDGES / f"{ATTRIBUTE_JUDGE}.safetensors").is_file():
        pytest.skip(f"the attribute judge is not in {DEFAULT_JUDGES}; run `python -m stargan.evaluate train-judges`")
    faces = load_test_faces(LabelSpace((celeba(CELEBA_ATTRIBUTES),)), 128, celeba_root=root, limit=None)[0]
    to_male = next(e for e in HEADLINE_EDITS if e.key == "to_male")
    s_idx, t_idx = edit_sets(to_male, faces, CELEBA_ATTRIBUTES)
    assert (faces.attributes[s_idx, CELEBA_ATTRIBUTES.index("Male")] == 0).all()
    assert (faces.attributes[t_idx, CELEBA_ATTRIBUTES.index("Male")] == 1).all()
    judge, _ = load_judge(DEFAULT_JUDGES, ATTRIBUTE_JUDGE)
    return (faces.images[s_idx[:FACES]], faces.images[t_idx[:FACES]], faces.images[t_idx[FACES: 2 * FACES]], judge)


def closed(judge, source, edited, target) -> float:
    f = [realism.judge_features(judge, z) for z in (source, edited, target)]
    return realism.gap_closed(*f).gap_closed


def test_known_answers(female_male):
    source, target, other_target, judge = female_male
    assert closed(judge, source, source, target) == pytest.approx(0.0, abs=1e-9)
    assert closed(judge, source, other_target, target) > 0.7
    assert closed(judge, source, realism.blur(source, 1.5), target) < 0
    assert closed(judge, source, realism.colour_blotches(source, torch.Generator().manual_seed(0)), target) < 0


def test_interval_holds_the_estimate_and_small_sets_are_refused(female_male):
    source, target, other_target, judge = female_male
    f = [realism.judge_features(judge, z) for z in (source, other_target, target)]
    r = realism.gap_closed(*f)
    assert r.low <= r.gap_closed <= r.high and r.high - r.low < 1.0
    assert r.faces_source == r.faces_target == FACES
    few = realism.MIN_FACES - 1
    with pytest.raises(EvaluationError, match="too few"):
        realism.gap_closed(f[0][:few], f[1][:few], f[2])
    with pytest.raises(EvaluationError, match="E must be S edited"):
        realism.gap_closed(f[0], f[1][:-1], f[2])


def test_kid_is_unbiased_and_sees_a_shift():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 16, generator=gen, dtype=torch.float64), torch.randn(400, 16, generator=gen,
                                                                                 dtype=torch.float64)
    same, shifted = realism.kid(a, b), realism.kid(a, b + 0.5)
    assert shifted > 0.1 and abs(same) < shifted / 5


def test_rank_correlation_and_grades():
    assert realism.rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert realism.rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert realism.rank_correlation([0, 0, 1, 1], [0.1, 0.2, 0.5, 0.9]) == pytest.approx(0.894, abs=1e-3)
    assert realism.grade(0.8, 0.7) == "works well"
    assert realism.grade(0.8, 0.2) == realism.grade(0.3, 0.9) == "subtle"
    assert realism.grade(-0.4, 0.9).startswith("experimental")


@pytest.fixture()
def tiny_joint_model(tmp_path):
    """A real weights folder (40 attributes + 8 expressions, 32 px) with a small random G and D."""
    config = ModelConfig(LabelSpace((celeba(CELEBA_ATTRIBUTES), expressions())), image_size=32, g_conv_dim=8,
                         g_repeat_num=1, d_conv_dim=8, d_repeat_num=2)
    torch.manual_seed(0)
    return save_weights(tmp_path / "joint", build_generator(config), config, build_discriminator(config),
                        provenance={"command": "test"})


def test_realism_in_the_cli_json_and_card(female_male, expression_test_roots, tiny_joint_model, tmp_path):
    roots = [str(r) for r in expression_test_roots]
    out = tmp_path / "realism.json"
    assert ev.main(["realism", str(tiny_joint_model), "--limit", "50", "--no-regions", "--out", str(out),
                    "--expression-roots", *roots, "--update-card"]) == 0
    result = json.loads(out.read_text())
    assert {"to_male", "to_female", "older", "glasses_on", "to_gray"} <= set(result["per_edit"])
    for r in result["per_edit"].values():
        assert r["faces_source"] == 50 and r["low"] <= r["gap_closed"] <= r["high"] and 0 <= r["success"] <= 1
    card = json.loads((tiny_joint_model / "config.json").read_text())["provenance"]
    assert card["command"] == "test" and card["evaluation"]["realism"]["per_edit"] == result["per_edit"]
    readme = (tiny_joint_model / "README.md").read_text()
    assert "| to male |" in readme and "What a person sees" in readme
    # the full evaluation carries it too, in its table and JSON
    report = tmp_path / "report"
    assert ev.main(["model", str(tiny_joint_model), "--limit", "8", "--labels", "Male", "--realism-limit", "50",
                    "--out", str(report), "--expression-roots", *roots]) == 0
    table = (report / "evaluation.md").read_text()
    assert "Realism per headline edit" in table and "| to female |" in table and "| happy" not in table
    assert set(json.loads((report / "evaluation.json").read_text())["realism"]["per_edit"]) == {"to_male",
                                                                                             "to_female"}
