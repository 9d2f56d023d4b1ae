"""Weights folders (DESIGN decision 4): save, load, and move them through the Hugging Face Hub.

A weights folder, identical on disk and as a Hub model repo::

    model.safetensors          G's state dict (fp32 or fp16)
    discriminator.safetensors  D's state dict (optional)
    config.json                {"format_version", "model", "template", "provenance"}
    README.md                  the model card, with Hub front matter
    sample_grid.png            optional; shown in the model card when present

Only safetensors and JSON are read: nothing is ever unpickled. Loading is strict: every key and shape must
match the architecture that config.json describes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import CONFIG_FORMAT_VERSION, ModelConfig
from .domains import BINARY
from .models import build_discriminator, build_generator

logger = logging.getLogger(__name__)

GENERATOR_FILE = "model.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
SAMPLE_GRID_FILE = "sample_grid.png"
TEMPLATE_POINTS = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")
DEFAULT_TERMS = ("The training data (CelebA / CelebA-HQ and the facial-expression sets) may be used for "
                 "non-commercial research and education only; so may these weights.")

# owner/name, optionally @revision (branch, tag or commit); the Hub's own naming rules.
_REPO_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>.+))?$")


class WeightsError(ValueError):
    """A weights folder or Hub repo that cannot be loaded or written; the message says what, where and how to fix."""


@dataclass
class LoadedModel:
    generator: nn.Module
    discriminator: nn.Module | None
    config: ModelConfig
    template: list[list[float]] | None
    provenance: dict[str, Any]
    path: Path  # the folder it was read from (a snapshot folder in the Hub cache for a repo id)
    revision: str | None = None  # the Hub commit it came from; None for a local folder


# ---- saving --------------------------------------------------------------------------------------------------
def save_weights(folder: str | Path, generator: nn.Module, config: ModelConfig,
                 discriminator: nn.Module | None = None, template: Any = None,
                 provenance: Mapping[str, Any] | None = None, dtype: torch.dtype | None = None) -> Path:
    """Write a weights folder and return its path.

    ``dtype`` (e.g. ``torch.float16``) casts floating tensors on disk; None keeps them as they are. The state
    dicts are checked against ``config`` first, so a folder that would not load is never written. A stale
    ``discriminator.safetensors`` is removed when no discriminator is given, so G is never paired with another
    run's D.
    """
    folder = Path(folder)
    template = _check_template(template, f"template passed to save_weights for {folder}")
    provenance = dict(provenance or {})
    try:
        json.dumps(provenance)
    except TypeError as e:
        raise WeightsError(f"provenance for {folder} must be JSON-serialisable (str, numbers, lists, dicts): {e}") from e

    g_state = _to_cpu(generator.state_dict(), dtype)
    _check_state_dict(g_state, _expected_shapes(build_generator, config), GENERATOR_FILE, config, "G")
    d_state = None
    if discriminator is not None:
        d_state = _to_cpu(discriminator.state_dict(), dtype)
        _check_state_dict(d_state, _expected_shapes(build_discriminator, config), DISCRIMINATOR_FILE, config, "D")

    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / GENERATOR_FILE, lambda p: save_file(g_state, str(p), metadata={"format": "pt"}))
    if d_state is not None:
        _atomic_write(folder / DISCRIMINATOR_FILE, lambda p: save_file(d_state, str(p), metadata={"format": "pt"}))
    elif (folder / DISCRIMINATOR_FILE).exists():
        logger.info("removing stale %s from %s (no discriminator given)", DISCRIMINATOR_FILE, folder)
        (folder / DISCRIMINATOR_FILE).unlink()
    document = {"format_version": CONFIG_FORMAT_VERSION, "model": config.to_dict(), "template": template,
                "provenance": provenance}
    _atomic_write(folder / CONFIG_FILE, lambda p: p.write_text(json.dumps(document, indent=2) + "\n"))
    card = model_card(config, provenance, template, g_params=_numel(g_state),
                      d_params=_numel(d_state) if d_state is not None else None,
                      sample_grid=(folder / SAMPLE_GRID_FILE).exists())
    _atomic_write(folder / CARD_FILE, lambda p: p.write_text(card))
    logger.info("saved weights folder %s", folder)
    return folder


def _to_cpu(state: Mapping[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        v = v.detach().to("cpu")
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.contiguous()
    return out


def _atomic_write(path: Path, write) -> None:
    # Write next to the target and rename, so an interrupted save never leaves a half-written file.
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _numel(state: Mapping[str, torch.Tensor]) -> int:
    return sum(v.numel() for v in state.values())


# ---- loading -------------------------------------------------------------------------------------------------
def load_weights(source: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 load_discriminator: bool = True, cache_dir: str | Path | None = None,
                 token: str | bool | None = None) -> LoadedModel:
    """Load a weights folder from a local path or a Hub repo id (``owner/name`` or ``owner/name@revision``).

    Modules come back in eval() mode with gradients off, on ``device`` in ``dtype``. D is None when the folder
    has none or ``load_discriminator`` is False. Raises :class:`WeightsError` for anything that does not fit.
    """
    path = Path(source)
    if path.is_dir():
        return _load_folder(path, device, dtype, load_discriminator, origin=str(path))
    match = _REPO_ID.match(str(source))
    if path.exists() or match is None:
        raise WeightsError(f"{source!s}: not a weights folder (no such directory) and not a Hub repo id of the "
                           "form owner/name[@revision]; pass the folder that holds config.json and model.safetensors")
    repo_id, revision = match["repo"], match["rev"]
    snapshot = _download(repo_id, revision, load_discriminator, cache_dir, token, local_hint=str(source))
    label = f"{repo_id}@{revision}" if revision else repo_id
    loaded = _load_folder(snapshot, device, dtype, load_discriminator, origin=f"Hub repo {label} ({snapshot})")
    loaded.revision = snapshot.name  # the cache names each snapshot folder by its commit sha
    return loaded


def _download(repo_id: str, revision: str | None, with_d: bool, cache_dir: str | Path | None,
              token: str | bool | None, local_hint: str) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    files = [CONFIG_FILE, GENERATOR_FILE] + ([DISCRIMINATOR_FILE] if with_d else [])
    where = f"{repo_id}" + (f" at revision {revision!r}" if revision else "")
    cache = Path(cache_dir or constants.HF_HUB_CACHE)
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=files, cache_dir=cache_dir,
                                      token=token))
    except RevisionNotFoundError as e:
        raise WeightsError(f"Hub repo {repo_id} has no revision {revision!r}; pass a branch, tag or full commit "
                           f"sha that exists (see its 'Files and versions' page on {constants.ENDPOINT})") from e
    except RepositoryNotFoundError as e:
        raise WeightsError(f"no model repo {repo_id!r} on {constants.ENDPOINT} (and no local folder "
                           f"{local_hint!r}): check the name, or if the repo is private log in (`hf auth login` "
                           "or HF_TOKEN)") from e
    except LocalEntryNotFoundError as e:
        if constants.is_offline_mode():
            raise WeightsError(f"offline mode is on (HF_HUB_OFFLINE=1) and {where} is not in the local cache "
                               f"{cache}: download it once with network access, unset HF_HUB_OFFLINE, or pass a "
                               "local weights folder") from e
        raise WeightsError(f"could not reach the Hub at {constants.ENDPOINT} to download {where}, and it is not in "
                           f"the local cache {cache}: check the network (and HF_ENDPOINT), or pass a local weights "
                           f"folder. Cause: {e}") from e
    except HfHubHTTPError as e:
        raise WeightsError(f"the Hub refused to send {where}: {e}") from e


def _load_folder(folder: Path, device: str | torch.device, dtype: torch.dtype, load_discriminator: bool,
                 origin: str) -> LoadedModel:
    config, template, provenance = read_config(folder / CONFIG_FILE)
    generator = _load_module(folder / GENERATOR_FILE, build_generator, config, "G", origin, required=True)
    discriminator = None
    if load_discriminator:
        discriminator = _load_module(folder / DISCRIMINATOR_FILE, build_discriminator, config, "D", origin,
                                     required=False)
    for module in (generator, discriminator):
        if module is not None:
            module.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return LoadedModel(generator, discriminator, config, template, provenance, folder)


def read_config(path: str | Path) -> tuple[ModelConfig, list[list[float]] | None, dict[str, Any]]:
    """Parse and check a weights folder's config.json: (model config, template or None, provenance)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: missing. A weights folder needs {CONFIG_FILE} next to {GENERATOR_FILE}; "
                           "write one with stargan.weights.save_weights (or stargan.legacy for original checkpoints)")
    try:
        document = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"{path}: not valid JSON ({e}); restore it from the original weights folder") from e
    if not isinstance(document, dict):
        raise WeightsError(f"{path}: expected a JSON object with format_version and model, got {type(document).__name__}")
    version = document.get("format_version")
    if version != CONFIG_FORMAT_VERSION:
        if isinstance(version, int) and version > CONFIG_FORMAT_VERSION:
            hint = "it was written by a newer StarGAN Studio: upgrade this one"
        else:
            hint = "this is not a StarGAN Studio weights folder, or the file is damaged"
        raise WeightsError(f"{path}: unknown format_version {version!r} (this version reads "
                           f"{CONFIG_FORMAT_VERSION}); {hint}")
    if "model" not in document:
        raise WeightsError(f"{path}: no 'model' section (architecture and label space); re-export the folder")
    try:
        config = ModelConfig.from_dict(document["model"])
    except (ValueError, TypeError, KeyError) as e:
        raise WeightsError(f"{path}: the 'model' section is not a valid model config: {e}") from e
    template = _check_template(document.get("template"), f"{path}: 'template'")
    provenance = document.get("provenance") or {}
    if not isinstance(provenance, dict):
        raise WeightsError(f"{path}: 'provenance' must be a JSON object, got {type(provenance).__name__}")
    return config, template, provenance


def _load_module(path: Path, build, config: ModelConfig, name: str, origin: str, required: bool) -> nn.Module | None:
    if not path.is_file():
        if required:
            raise WeightsError(f"{path}: missing ({name}'s weights) in {origin}; a weights folder needs "
                               f"{GENERATOR_FILE}: copy it back or re-export the folder")
        return None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise WeightsError(f"{path}: corrupt or truncated safetensors file ({e}); download or copy it again "
                           "(for a Hub repo, delete it from the cache so it is fetched anew)") from e
    _check_state_dict(tensors, _expected_shapes(build, config), path.name, config, name, where=str(path))
    with torch.device("meta"):  # no random init: every parameter is assigned from the file
        module = build(config)
    module.load_state_dict(tensors, strict=True, assign=True)
    return module


# ---- checks ----------------------------------------------------------------------------------------------------
def _expected_shapes(build, config: ModelConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        module = build(config)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _check_state_dict(tensors: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], file: str,
                      config: ModelConfig, name: str, where: str | None = None) -> None:
    where = where or file
    arch = (f"g_conv_dim={config.g_conv_dim}, g_repeat_num={config.g_repeat_num}, g_down_num={config.g_down_num}, "
            f"G label length {config.g_label_dim}" if name == "G" else
            f"image_size={config.image_size}, d_conv_dim={config.d_conv_dim}, d_repeat_num={config.d_repeat_num}, "
            f"d_src_depth={config.d_src_depth}, d_scales={config.d_scales}, d_src_trunk={config.d_src_trunk}, "
            f"{config.d_label_dim} class outputs")
    fix = ("the weights and config.json do not belong to the same model: re-export the folder with "
           "stargan.weights.save_weights, or restore the matching config.json")
    missing = [k for k in expected if k not in tensors]
    if missing:
        raise WeightsError(f"{where}: {name} is missing {len(missing)} tensor(s) that config.json's architecture "
                           f"({arch}) needs: {_some(missing)}; {fix}")
    unexpected = [k for k in tensors if k not in expected]
    if unexpected:
        hint = ""
        if any(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in unexpected):
            hint = " (running statistics: an original-implementation checkpoint? convert it with python -m stargan.legacy)"
        raise WeightsError(f"{where}: {name} has {len(unexpected)} tensor(s) that config.json's architecture ({arch}) "
                           f"does not have: {_some(unexpected)}{hint}; {fix}")
    for k, shape in expected.items():
        got = tuple(tensors[k].shape)
        if got != shape:
            raise WeightsError(f"{where}: tensor {k!r} of {name} has shape {got} but config.json's architecture "
                               f"({arch}) needs {shape}; {fix}")
        if not tensors[k].is_floating_point():
            raise WeightsError(f"{where}: tensor {k!r} of {name} has dtype {tensors[k].dtype}; weights must be "
                               "floating point")


def _some(keys: list[str], n: int = 6) -> str:
    return ", ".join(keys[:n]) + (f" ... ({len(keys) - n} more)" if len(keys) > n else "")


def _check_template(template: Any, what: str) -> list[list[float]] | None:
    if template is None:
        return None
    try:
        points = [[float(x), float(y)] for x, y in template]
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{what} must be five [x, y] pairs ({', '.join(TEMPLATE_POINTS)}) or null: {e}") from e
    if len(points) != len(TEMPLATE_POINTS) or not all(math.isfinite(v) for p in points for v in p):
        raise WeightsError(f"{what} must be five finite [x, y] pairs ({', '.join(TEMPLATE_POINTS)}) normalised to "
                           f"[0, 1] of the square input, got {template!r}")
    return points


# ---- the model card --------------------------------------------------------------------------------------------
def model_card(config: ModelConfig, provenance: Mapping[str, Any] | None = None, template: Any = None,
               g_params: int | None = None, d_params: int | None = None, sample_grid: bool = False,
               title: str = "StarGAN") -> str:
    """The README.md of a weights folder: Hub front matter, then what the model does, its labels and its history."""
    from huggingface_hub import ModelCardData

    prov = dict(provenance or {})
    space = config.label_space
    front = ModelCardData(
        license="other", license_name="non-commercial-research",
        pipeline_tag="image-to-image",
        tags=["stargan", "gan", "image-to-image", "face-editing", "face-attribute-editing"]
        + (["facial-expression"] if any(d.kind != BINARY for d in space.datasets) else []) + ["pytorch", "safetensors"],
    ).to_yaml()
    lines = [f"---\n{front}\n---", "", f"# {title}", "",
             ("A StarGAN generator (Choi et al., CVPR 2018): one network G(x, c) that edits a face photo x towards any "
             "target label c of the label space below."), "",
             f"**Terms: non-commercial research and education only.** {prov.get('terms', DEFAULT_TERMS)}", ""]
    if sample_grid:
        lines += [f"![sample grid]({SAMPLE_GRID_FILE})", ""]
    lines += ["## Model", "", "| | |", "| --- | --- |",
              f"| image size | {config.image_size} x {config.image_size} |",
              f"| G | conv_dim {config.g_conv_dim}, {config.g_repeat_num} residual blocks at 1/{2 ** config.g_down_num} "
              f"of the side, {config.g_upsample} upsampling, {config.g_head} head"
              + (f", {g_params:,} parameters" if g_params is not None else "") + " |",
              f"| D | conv_dim {config.d_conv_dim}, {config.d_repeat_num} layers, real/fake map "
              f"{config.image_size // 2 ** (config.d_src_depth or config.d_repeat_num)} x "
              f"{config.image_size // 2 ** (config.d_src_depth or config.d_repeat_num)}"
              + (" on its own layers" if config.d_src_trunk == "own" else "")
              + (" and another at half resolution" if config.d_scales == 2 else "")
              + (f", {d_params:,} parameters" if d_params is not None else ", not included") + " |",
              f"| G label length | {config.g_label_dim}" + (" (with the mask vector)" if space.has_mask else "") + " |",
              "", "## Label space", ""]
    for d in space.datasets:
        kind = ("binary attributes, each a value in [0, 1]" if d.kind == BINARY
                else "one expression, a probability vector")
        lines += [f"- **{d.name}** ({kind}): " + ", ".join(f"`{n}`" for n in d.names)]
    if space.has_mask:
        lines += [(f"- mask vector: {len(space.datasets)} entries naming the valid block "
                  f"({', '.join(d.name for d in space.datasets)})")]
    lines += [""]
    if template is not None:
        pts = "; ".join(f"{n} ({x:.4f}, {y:.4f})" for n, (x, y) in zip(TEMPLATE_POINTS, template, strict=True))
        lines += ["## Face alignment", "", ("Faces are aligned by a similarity transform from five landmarks to this "
                  f"template (normalised to the square input): {pts}."), ""]
    lines += ["## Training", ""]
    known = [("data", "data"), ("command", "command"), ("steps", "steps"), ("wall_time_s", "wall time"),
             ("hardware", "hardware"), ("source", "source")]
    for key, label in known:
        if key in prov:
            value = prov[key]
            if key == "command":
                value = f"`{value}`"
            elif key == "wall_time_s" and isinstance(value, (int, float)):
                value = f"{value / 3600:.2f} h ({value:,.0f} s)"
            elif key == "steps" and isinstance(value, int):
                value = f"{value:,}"
            elif isinstance(value, (dict, list)):
                value = json.dumps(value)
            lines += [f"- {label}: {value}"]
    shown = {k for k, _ in known} | {"evaluation", "terms"}
    for key, value in prov.items():
        if key in shown or value in ([], None, ""):
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):  # e.g. commands, one per line
            lines += [f"- {key}:", *(f"  - `{v}`" for v in value)]
        else:
            lines += [f"- {key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}"]
    if not any(k in prov for k, _ in known):
        lines += ["- not recorded"]
    lines += [""]
    if prov.get("evaluation"):
        lines += ["## Evaluation", "", *_evaluation_lines(prov["evaluation"]), ""]
    lines += ["## Use", "", "```python", "from stargan.weights import load_weights",
              "model = load_weights(\"<this folder or owner/name[@revision]>\")",
              "```", ""]
    return "\n".join(lines)


def _percent(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "n/a"


def _evaluation_lines(evaluation: Any) -> list[str]:
    """The evaluation as tables: the summary, then one row per label (stargan.evaluate's layout)."""
    if not isinstance(evaluation, dict):
        return [str(evaluation)]
    lines = []
    if isinstance(evaluation.get("summary"), dict):
        lines += ["| summary | value |", "| --- | --- |"]
        lines += [f"| {k} | {_percent(v) if isinstance(v, float) and 0 <= v <= 1 and 'fid' not in k else v} |"
                  for k, v in evaluation["summary"].items()]
        lines += [""]
    per_label = evaluation.get("per_label")
    if isinstance(per_label, dict):
        lines += ["| label | success | preservation | reconstruction (L1) | judge accuracy on real faces |",
                  "| --- | --- | --- | --- | --- |"]
        for name, row in per_label.items():
            row = row if isinstance(row, dict) else {"success": row}
            rec = row.get("reconstruction")
            rec = f"{rec:.3f}" if isinstance(rec, (int, float)) else "n/a"
            lines += [f"| {name} | {_percent(row.get('success'))} | {_percent(row.get('preservation'))} | {rec} | "
                      f"{_percent(row.get('judge_accuracy_real'))} |"]
        lines += [""]
    realism = evaluation.get("realism")
    if isinstance(realism, dict) and isinstance(realism.get("per_edit"), dict):
        from .evaluate import realism_markdown

        lines += ["What a person sees: how close the edited faces come to real faces of the target (the share of the "
                  "gap from real source to real target faces the edit closes; 1 = as real as real target faces, 0 = "
                  "no change, below 0 = further from real faces than before), beside success, and the plain grade "
                  "the demo shows.", "", realism_markdown(realism), ""]
    for key, value in evaluation.items():
        if key not in ("summary", "per_label", "realism"):
            lines += [f"- {key}: `{value}`" if key == "command" else
                      f"- {key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}"]
    return lines


# ---- the Hub ---------------------------------------------------------------------------------------------------
def push_to_hub(folder_or_model: str | Path | LoadedModel, repo_id: str, private: bool = False,
                revision: str | None = None, commit_message: str = "Upload StarGAN weights",
                token: str | bool | None = None) -> str:
    """Create ``repo_id`` if needed and upload the weights folder in one commit.

    A folder is checked by loading it first, so a broken folder is never pushed; a folder without README.md
    gets a generated model card. A :class:`LoadedModel` is written to a temporary folder from its modules (so
    in-memory changes are what gets pushed). ``revision`` names a branch, created from main if missing.
    Returns the commit URL (a ``huggingface_hub.CommitInfo``, a ``str`` whose ``.oid`` is the commit sha).
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="stargan-push-") as tmp:
        if isinstance(folder_or_model, LoadedModel):
            m = folder_or_model
            folder = Path(tmp)
            if (m.path / SAMPLE_GRID_FILE).is_file():
                shutil.copyfile(m.path / SAMPLE_GRID_FILE, folder / SAMPLE_GRID_FILE)
            save_weights(folder, m.generator, m.config, m.discriminator, m.template, m.provenance)
        else:
            folder = Path(folder_or_model)
            if not folder.is_dir():
                raise WeightsError(f"{folder}: no such weights folder to push; pass a folder written by "
                                   "save_weights or a LoadedModel")
            m = load_weights(folder)  # raises WeightsError for anything that would not load after the push
            if not (folder / CARD_FILE).is_file():
                logger.info("%s has no %s; writing a generated model card", folder, CARD_FILE)
                (folder / CARD_FILE).write_text(model_card(
                    m.config, m.provenance, m.template, _numel(m.generator.state_dict()),
                    _numel(m.discriminator.state_dict()) if m.discriminator is not None else None,
                    (folder / SAMPLE_GRID_FILE).exists()))
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, revision=revision, commit_message=commit_message,
                                 allow_patterns=[GENERATOR_FILE, DISCRIMINATOR_FILE, CONFIG_FILE, CARD_FILE,
                                                 SAMPLE_GRID_FILE])
    logger.info("pushed %s to %s: %s", folder_or_model if not isinstance(folder_or_model, LoadedModel) else "model",
                repo_id, info)
    return info


# ---- packing for shipping ---------------------------------------------------------------------------------------
def pack_weights(source: str | Path, target: str | Path, dtype: torch.dtype = torch.float16,
                 grid_width: int = 1600) -> Path:
    """A weights folder to commit or ship: ``source``'s G and D cast to ``dtype`` (half the size, fp16 by
    default; loading casts back), the same config and provenance, and its sample grid scaled to at most
    ``grid_width`` pixels wide. ``target`` may be the folder being replaced."""
    from PIL import Image

    m = load_weights(source)
    grid = Path(source) / SAMPLE_GRID_FILE
    picture = Image.open(grid).convert("RGB") if grid.is_file() else None
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    if picture is not None:
        if picture.width > grid_width:
            picture = picture.resize((grid_width, round(picture.height * grid_width / picture.width)), Image.LANCZOS)
        picture.save(target / SAMPLE_GRID_FILE, optimize=True)
    elif (target / SAMPLE_GRID_FILE).exists():
        (target / SAMPLE_GRID_FILE).unlink()  # not another model's samples
    return save_weights(target, m.generator, m.config, m.discriminator, m.template, m.provenance, dtype=dtype)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m stargan.weights", description="Weights-folder tools.")
    sub = p.add_subparsers(dest="cmd", required=True)
    pk = sub.add_parser("pack", help="copy a weights folder (e.g. a run's export) in fp16, to commit or ship")
    pk.add_argument("source", type=Path, help="a weights folder, e.g. RUN_DIR/export")
    pk.add_argument("target", type=Path, help="the folder to write, e.g. weights/stargan-studio")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        folder = pack_weights(args.source, args.target)
    except WeightsError as e:
        p.exit(2, f"error: {e}\n")
    size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
    print(f"wrote {folder} ({size:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
