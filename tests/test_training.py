"""train.py end to end on tiny generated data: the three modes, resume, crash safety, DDP, data errors."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train
from stargan import checkpoint as ckpt
from stargan.config import TrainConfig
from stargan.data import CelebADataset, DataError, ExpressionDataset
from stargan.domains import celeba, expressions

from conftest import ATTRS, PROJECT_ROOT

TINY = ["--image-size", "32", "--g-conv-dim", "8", "--g-repeat-num", "1", "--d-conv-dim", "8", "--d-repeat-num", "3",
        "--batch-size", "4", "--num-workers", "0", "--log-every", "1", "--n-critic", "2", "--precision", "fp32"]


def run(args: list[str]) -> int:
    return train.main(args)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("mode", ["celeba", "rafd", "joint"])
def test_end_to_end_in_each_mode(mode, celeba_dir, expression_dir, tmp_path):
    data = {"celeba": ["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4"],
            "rafd": ["--expression-dir", str(expression_dir)]}
    args = data["celeba"] * (mode != "rafd") + data["rafd"] * (mode != "celeba")
    run_dir = tmp_path / "run"
    assert run([*args, *TINY, "--num-iters", "6", "--sample-every", "3", "--checkpoint-every", "2",
                "--keep-checkpoints", "2", "--run-dir", str(run_dir)]) == 0
    options = json.loads((run_dir / "options.json").read_text())
    assert options["num_iters"] == 6
    rows = metrics(run_dir)
    assert [r["step"] for r in rows] == list(range(1, 7))
    blocks = {"celeba": ["celeba"], "rafd": ["rafd"], "joint": ["celeba", "rafd"]}[mode]
    for block in blocks:
        assert all(np.isfinite(r[f"D/{block}/total"]) for r in rows)
        assert any(f"G/{block}/rec" in r for r in rows)
    # sample grid: one row per input (4 per dataset), input + one column per single-domain target
    grid = Image.open(run_dir / "samples" / "step_00000003.png")
    columns = 1 + (3 if mode != "rafd" else 0) + (8 if mode != "celeba" else 0)
    assert grid.size == (32 * columns, 32 * 4 * len(blocks))
    assert [p.name for p in ckpt.list_checkpoints(run_dir)] == ["step_00000004.pt", "step_00000006.pt"]
    export = run_dir / "export"
    assert {p.name for p in export.iterdir()} >= {"model.safetensors", "discriminator.safetensors", "config.json",
                                                   "README.md", "sample_grid.png"}
    from stargan.weights import load_weights
    model = load_weights(export)
    assert [d.name for d in model.config.label_space.datasets] == blocks
    assert model.provenance["steps"] == 6


def test_resume_reproduces_an_uninterrupted_run(celeba_dir, expression_dir, tmp_path):
    common = ["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4", "--expression-dir",
              str(expression_dir), *TINY, "--num-iters-decay", "0", "--sample-every", "0", "--checkpoint-every", "3",
              "--seed", "7"]
    run([*common, "--num-iters", "8", "--run-dir", str(tmp_path / "full")])
    run([*common, "--num-iters", "3", "--run-dir", str(tmp_path / "part")])
    run(["--resume", "--run-dir", str(tmp_path / "part"), "--num-iters", "8"])
    full, part = metrics(tmp_path / "full"), metrics(tmp_path / "part")
    assert [r["step"] for r in part] == list(range(1, 9))
    for a, b in zip(full, part):
        for key in a:
            if "/" in key:
                assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-7), (a["step"], key)


def test_max_minutes_bounds_each_invocation_not_the_whole_run(celeba_dir, tmp_path):
    run_dir = tmp_path / "r"
    run(["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4", *TINY,
         "--num-iters", "2", "--sample-every", "0", "--run-dir", str(run_dir)])
    # The run has already trained for two hours (an earlier session); a one-minute limit is for this one.
    path = ckpt.latest_checkpoint(run_dir)
    state = ckpt.load_checkpoint(path)
    state["wall_time"] = 7200.0
    torch.save(state, path)
    assert run(["--resume", "--run-dir", str(run_dir), "--num-iters", "5", "--max-minutes", "1"]) == 0
    assert [r["step"] for r in metrics(run_dir)][-1] == 5
    assert metrics(run_dir)[-1]["time"] > 7200  # the run's own clock still counts every leg


def test_export_every_minutes_exports_by_the_clock(celeba_dir, tmp_path, monkeypatch):
    from stargan.trainer import Trainer
    from stargan.weights import load_weights

    exported_at, export = [], Trainer.export
    monkeypatch.setattr(Trainer, "export", lambda self, folder: exported_at.append(self.step) or export(self, folder))
    args = ["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4", *TINY,
            "--num-iters", "4", "--sample-every", "0", "--export-every", "0"]
    run([*args, "--run-dir", str(tmp_path / "steps")])
    assert exported_at == [4]  # only the final export
    exported_at.clear()
    # A limit shorter than a step: every step is due, and the end does not write the last step again.
    run([*args, "--export-every-minutes", "1e-6", "--run-dir", str(tmp_path / "clock")])
    assert exported_at == [1, 2, 3, 4]
    assert load_weights(tmp_path / "clock" / "export").provenance["steps"] == 4


def test_resume_refuses_to_change_the_run(celeba_dir, tmp_path):
    args = ["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4", *TINY, "--num-iters", "2",
            "--sample-every", "0", "--run-dir", str(tmp_path / "r")]
    run(args)
    with pytest.raises(SystemExit, match="cannot change"):
        run(["--resume", "--run-dir", str(tmp_path / "r"), "--g-conv-dim", "16"])
    with pytest.raises(SystemExit, match="no checkpoint"):
        run(["--resume", "--run-dir", str(tmp_path / "empty")])


def test_init_from_a_weights_folder_fine_tunes_it(celeba_dir, tmp_path):
    from stargan.config import TrainConfig
    from stargan.trainer import Trainer
    from stargan.weights import load_weights

    data = ["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4", *TINY,
            "--sample-every", "0"]
    run([*data, "--num-iters", "2", "--run-dir", str(tmp_path / "first")])
    first = load_weights(tmp_path / "first" / "export")
    run([*data, "--num-iters", "2", "--init-from", str(tmp_path / "first" / "export"), "--run-dir", str(tmp_path / "second")])
    second = load_weights(tmp_path / "second" / "export")
    assert second.provenance["steps"] == 2
    assert second.provenance["initialised_from"]["steps"] == 2
    assert second.provenance["initialised_from"]["source"] == str(tmp_path / "first" / "export")
    # the earlier stage's CPU time travels with it, so a model's total training cost can be summed
    # (two tiny steps may round to 0.0 s, so the value is compared, not its size)
    assert "cpu_time_s" in first.provenance
    assert second.provenance["initialised_from"]["cpu_time_s"] == first.provenance["cpu_time_s"]

    options = json.loads((tmp_path / "second" / "options.json").read_text())
    trainer = Trainer(TrainConfig.from_dict({**options, "run_dir": str(tmp_path / "third")}))
    # a run initialised from `first` starts exactly at its weights (G's average too); training then moves them
    for module, loaded in ((trainer.G, first.generator), (trainer.G_ema, first.generator), (trainer.D, first.discriminator)):
        for a, b in zip(module.state_dict().values(), loaded.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, b) for a, b in zip(first.generator.state_dict().values(),
                                                     second.generator.state_dict().values()))
    with pytest.raises(ValueError, match="differs from this run"):
        Trainer(TrainConfig.from_dict({**options, "g_conv_dim": 16, "run_dir": str(tmp_path / "fourth")}))
    # G may go on reading its labels another way: the same weights, the difference of labels as input
    differs = Trainer(TrainConfig.from_dict({**options, "g_condition": "difference", "run_dir": str(tmp_path / "diff")}))
    assert differs.G.condition == "difference"
    for a, b in zip(differs.G.state_dict().values(), first.generator.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    # A paper-head G may start an attention-head run (GANimation's mask, started half open).
    run([*data, "--num-iters", "1", "--init-from", str(tmp_path / "first" / "export"), "--g-head", "attention",
         "--lambda-mask", "0.1", "--run-dir", str(tmp_path / "attention")])
    attention = load_weights(tmp_path / "attention" / "export")
    assert attention.config.g_head == "attention" and attention.provenance["initialised_from"]["steps"] == 2

    # A fine-tune may train at another image size and give G more residual blocks (the recipe study's
    # size and depth candidates).
    run([*data, "--num-iters", "1", "--init-from", str(tmp_path / "first" / "export"), "--image-size", "48",
         "--g-repeat-num", "3", "--run-dir", str(tmp_path / "grown")])
    grown = load_weights(tmp_path / "grown" / "export")
    assert (grown.config.image_size, grown.config.g_repeat_num) == (48, 3)
    run([*data, "--num-iters", "1", "--init-from", str(tmp_path / "first" / "export"), "--g-upsample", "resize",
         "--run-dir", str(tmp_path / "resized")])
    assert load_weights(tmp_path / "resized" / "export").config.g_upsample == "resize"


SLOW_SAVE = """
import sys, time, torch
sys.path.insert(0, {root!r})
real_save = torch.save
def slow_save(obj, f, *a, **k):
    # a slow disk: the first checkpoint writes normally, later ones stall half-way through
    slow_save.calls += 1
    if slow_save.calls == 1:
        return real_save(obj, f, *a, **k)
    import io
    buf = io.BytesIO(); real_save(obj, buf, *a, **k); data = buf.getvalue()
    f.write(data[: len(data) // 2]); f.flush(); time.sleep(60); f.write(data[len(data) // 2:])
slow_save.calls = 0
torch.save = slow_save
import train
sys.exit(train.main(sys.argv[1:]))
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_one(celeba_dir, tmp_path):
    run_dir = tmp_path / "run"
    args = ["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4", *TINY, "--num-iters", "6",
            "--sample-every", "0", "--checkpoint-every", "2", "--run-dir", str(run_dir)]
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SAVE.format(root=str(PROJECT_ROOT)), *args],
                            cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = run_dir / "checkpoints" / ".step_00000004.pt.tmp"
    deadline = time.time() + 120
    while not (partial.exists() and partial.stat().st_size > 0) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert partial.exists(), "the second checkpoint write never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p.name for p in ckpt.list_checkpoints(run_dir)] == ["step_00000002.pt"]
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["step"] == 2
    assert run(["--resume", "--run-dir", str(run_dir)]) == 0
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["step"] == 6


def test_ddp_on_two_processes_matches_one_process(celeba_dir, tmp_path):
    args = ["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4", *TINY, "--num-iters", "4",
            "--sample-every", "0", "--checkpoint-every", "4", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "train.py", *args, "--run-dir", str(tmp_path / "one")], cwd=PROJECT_ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                            str(29500 + os.getpid() % 1000), "train.py", *args, "--run-dir", str(tmp_path / "two")],
                           cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert multi.returncode == 0, multi.stderr[-3000:]
    one = ckpt.load_checkpoint(tmp_path / "one" / "checkpoints" / "step_00000004.pt")["G"]
    two = ckpt.load_checkpoint(tmp_path / "two" / "checkpoints" / "step_00000004.pt")["G"]
    assert one.keys() == two.keys()
    initial = train_initial_g(one)
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=1e-4, atol=1e-5)
    assert any(not torch.equal(one[k], initial[k]) for k in one), "G did not train"
    # A time limit stops both processes at the same step (they agree on it), cleanly, with a checkpoint.
    limited = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                              str(29500 + os.getpid() % 1000), "train.py", *args, "--max-minutes", "0.0001",
                              "--run-dir", str(tmp_path / "limited")],
                             cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert limited.returncode == 0, limited.stderr[-3000:]
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "limited")] == ["step_00000001.pt"]


def train_initial_g(like: dict) -> dict:
    from stargan.models import Generator
    torch.manual_seed(1234)
    g = Generator(8, len(ATTRS), 1)
    return {k: v for k, v in g.state_dict().items() if k in like}


# ---- data errors ---------------------------------------------------------------------------------------------
def test_data_errors_are_clear(celeba_dir, expression_dir, tmp_path):
    labels = celeba(ATTRS)
    with pytest.raises(DataError, match="CelebA folder not found"):
        CelebADataset(tmp_path / "nowhere", labels)
    attr_file = celeba_dir / "list_attr_celeba.txt"
    good = attr_file.read_text()
    lines = good.splitlines()
    attr_file.write_text("\n".join(lines[:5] + [lines[5] + " 1"] + lines[6:]) + "\n")
    with pytest.raises(DataError, match=r"list_attr_celeba.txt:6: expected a file name and 3 values"):
        CelebADataset(celeba_dir, labels, test_size=4)
    attr_file.write_text(good)
    (celeba_dir / "images" / "7.jpg").unlink()
    with pytest.raises(DataError, match=r"1 image\(s\) listed .* missing .*7.jpg"):
        CelebADataset(celeba_dir, labels, test_size=4)
    with pytest.raises(DataError, match="no column for \\['Young'\\]"):
        CelebADataset(celeba_dir, celeba(["Young"]), test_size=4)
    with pytest.raises(KeyError, match="unknown CelebA attribute"):
        train.main(["--celeba-dir", str(celeba_dir), "--celeba-attrs", "Purple_Hair", "--dry-run"])
    (expression_dir / "grumpy").mkdir()
    with pytest.raises(DataError, match=r"unknown expression folder\(s\) \['grumpy'\]"):
        ExpressionDataset([expression_dir], expressions())
    empty = tmp_path / "empty_expr"
    (empty / "happy").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        ExpressionDataset([empty], expressions())


def test_expression_indices_follow_the_label_space(expression_dir):
    ds = ExpressionDataset([expression_dir], expressions())
    # folders are happy, sad, surprised: their indices are RaFD's 4, 6, 7, not 0, 1, 2
    assert sorted(set(ds.targets.tolist())) == [4, 6, 7]
    x, v = ds[0]
    assert x.shape == (3, 32, 32) or x.shape[0] == 3
    assert v.sum() == 1


def test_help_shows_the_presets_first_and_every_option_grouped_with_help(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    assert text.index("presets (--recipe NAME") < text.index("data (what to train on)") < text.index("recipe (losses")
    for name in ("paper", "shipped-v1", "cpu"):
        assert f"  {name} " in text
    assert set(train.OPTION_HELP) == {f.name for f in dataclasses.fields(TrainConfig)} - {"recipe"}
    assert all(len(help_text) > 20 for _, help_text in train.OPTION_HELP.values())


def test_dry_run_prints_parameter_counts(celeba_dir, capsys):
    assert train.main(["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "parameters: G" in out and '"batch_size": 16' in out


def test_distill_from_copies_a_reference_gs_edits(celeba_dir, tmp_path):
    from stargan.distill import load_reference
    from stargan.trainer import build_label_space
    from stargan.weights import load_weights

    data = ["--celeba-dir", str(celeba_dir), "--celeba-attrs", ",".join(ATTRS), "--celeba-test-size", "4", *TINY,
            "--sample-every", "0"]
    run([*data, "--num-iters", "3", "--run-dir", str(tmp_path / "reference")])
    folder = tmp_path / "reference" / "export"
    reference = load_weights(folder)
    # the target is the reference's change, made at its size and upsampled onto the bigger face
    labels = build_label_space(TrainConfig(celeba_dir=str(celeba_dir), celeba_attrs=ATTRS))
    ref = load_reference(folder, labels, torch.device("cpu"))
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    c_org, c_trg = torch.tensor([[1.0, 0, 1], [0, 1, 0]]), torch.tensor([[0.0, 1, 1], [0, 1, 0]])
    target = ref.target(x, c_trg, c_org)
    small = torch.nn.functional.interpolate(x, size=(32, 32), mode="area")
    with torch.no_grad():
        change = reference.generator(small, c_trg) - reference.generator(small, c_org)
    up = torch.nn.functional.interpolate(change, size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(target, (x + up).clamp(-1, 1))
    torch.testing.assert_close(target[1], x[1])  # no change asked: the face itself
    assert (target[0] - x[0]).abs().mean() > 1e-3

    # a 64 px run copies it: a large weight for the first steps, then the paper's losses alone
    run([*data, "--image-size", "64", "--d-repeat-num", "4", "--num-iters", "8", "--distill-from", str(folder),
         "--lambda-distill", "100", "--distill-steps", "6", "--g-lr", "1e-3", "--run-dir", str(tmp_path / "student")])
    rows = metrics(tmp_path / "student")
    copied = [r["G/celeba/distill"] for r in rows if "G/celeba/distill" in r]
    assert len(copied) == 3 and copied[-1] < copied[0]  # G steps 2, 4, 6 of 8 (n_critic 2); none after step 6
    assert "G/celeba/distill" not in rows[-1]
    provenance = load_weights(tmp_path / "student" / "export").provenance
    assert provenance["train_config"]["distill_from"] == str(folder)

    with pytest.raises(ValueError, match="distill-from"):
        run([*data, "--num-iters", "1", "--distill-steps", "5", "--run-dir", str(tmp_path / "no_reference")])
    other_labels = ["--celeba-dir", str(celeba_dir), "--celeba-attrs", "Male,Black_Hair", "--celeba-test-size", "4",
                    *TINY]
    with pytest.raises(ValueError, match="labels"):
        run([*other_labels, "--num-iters", "1", "--distill-from", str(folder), "--run-dir", str(tmp_path / "other")])


def test_residual_head_starts_as_the_identity_or_random(celeba_dir, tmp_path):
    from stargan.trainer import Trainer

    base = {"celeba_dir": str(celeba_dir), "celeba_attrs": ATTRS, "celeba_test_size": 4, "image_size": 32,
            "g_conv_dim": 8, "g_repeat_num": 1, "d_conv_dim": 8, "d_repeat_num": 3, "batch_size": 4,
            "num_workers": 0, "precision": "fp32", "g_head": "residual"}
    x, c = torch.rand(2, 3, 32, 32) * 2 - 1, torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    first_layer_grads = {}
    for start in ("zero", "random"):
        G = Trainer(TrainConfig.from_dict({**base, "g_residual_init": start, "run_dir": str(tmp_path / start)})).G
        y = G(x, c)
        y.sum().backward()
        first_layer_grads[start] = G.main[0].weight.grad.abs().sum().item()
        if start == "zero":
            torch.testing.assert_close(y, x)
        else:
            assert (y - x).abs().mean() > 1e-2
    # the reason for the option: a zero last layer passes nothing back to the layers before it
    assert first_layer_grads["zero"] == 0 and first_layer_grads["random"] > 0
    with pytest.raises(ValueError, match="residual head"):
        Trainer(TrainConfig.from_dict({**base, "g_head": "image", "g_residual_init": "random",
                                       "run_dir": str(tmp_path / "image")}))
