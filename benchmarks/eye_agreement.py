"""Does the realism measure agree with the eye? Sheets to mark by eye, then the table and the rank correlations.

``sheets``: for a weights folder, every headline edit's realism and success (stargan.evaluate.realism_per_edit,
the demo's defaults) into ``benchmarks/eye/<name>.json``, and one sheet per edit into ``docs/eye/<name>/``:
numbered before | after pairs, first held-out faces of the measured source set, then photos from
``celeba_wild_sample`` whose face the model reads as the source (the whole photo edited as the demo does,
shown as the aligned view of the face).

``table``: the marks (``benchmarks/eye/marks.json``: per model and edit, one 0/1 per pair, in sheet order,
made by the rule in that file, written before looking at any number) beside realism and success per kind of
edit, and the rank correlation of each measure with the share marked convincing.

    python benchmarks/eye_agreement.py sheets --weights weights/stargan-studio
    python benchmarks/eye_agreement.py table
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stargan.evaluate import HEADLINE_EDITS, realism_per_edit  # noqa: E402
from stargan.face import FaceError  # noqa: E402
from stargan.inference import Editor, to_uint8  # noqa: E402
from stargan.judges import DATA_ROOT  # noqa: E402
from stargan.realism import grade, rank_correlation  # noqa: E402

EYE = ROOT / "benchmarks" / "eye"
SHEETS = ROOT / "docs" / "eye"
HELD_OUT, WILD, TILE = 6, 4, 160


def _tile(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image).convert("RGB").resize((TILE, TILE), Image.LANCZOS)


def _sheet(pairs: list[tuple[np.ndarray, np.ndarray]], title: str) -> Image.Image:
    per_row = 5
    rows = (len(pairs) + per_row - 1) // per_row
    sheet = Image.new("RGB", (per_row * (2 * TILE + 12), rows * (TILE + 18) + 20), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), title, fill="black")
    for k, (before, after) in enumerate(pairs):
        x, y = (k % per_row) * (2 * TILE + 12), 20 + (k // per_row) * (TILE + 18)
        sheet.paste(_tile(before), (x, y + 14))
        sheet.paste(_tile(after), (x + TILE, y + 14))
        draw.text((x + 2, y), f"{k + 1}" + (" (photo)" if k >= HELD_OUT else ""), fill="black")
    return sheet


def _wild_faces(editor: Editor) -> list:
    prepared = []
    for path in sorted((DATA_ROOT / "celeba_wild_sample").glob("*.jpg")):
        try:
            photo = editor.prepare(path)
        except FaceError:
            continue
        if photo.faces:
            prepared.append(photo)
    return prepared


def _reads_as_source(labels: dict[str, float], name: str, value: float) -> bool:
    return labels[name] < 0.5 if value >= 0.5 else labels[name] >= 0.5


def sheets(weights: str, limit: int) -> None:
    name = Path(weights).name
    result = realism_per_edit(weights, limit=limit, keep_images=True)
    images = result.pop("images")
    EYE.mkdir(parents=True, exist_ok=True)
    (EYE / f"{name}.json").write_text(json.dumps({"weights": weights, **result}, indent=1) + "\n")
    editor = Editor(weights)
    wild = _wild_faces(editor)
    out = SHEETS / name
    out.mkdir(parents=True, exist_ok=True)
    for key, r in result["per_edit"].items():
        edit = next(e for e in HEADLINE_EDITS if e.key == key)
        pairs = [(to_uint8(s[None])[0], to_uint8(e[None])[0])
                 for s, e in zip(images[key]["source"][:HELD_OUT], images[key]["edited"][:HELD_OUT], strict=True)]
        chosen = [p for p in wild if _reads_as_source(p.faces[0].labels, edit.name, edit.value)][:WILD]
        for photo in chosen:
            done = editor.edit(photo, {edit.name: edit.value})
            pairs.append((done.before[0], done.after[0]))
        _sheet(pairs, f"{name}: {r['title']} (held-out 1-{HELD_OUT}, then photos)").save(out / f"{key}.jpg",
                                                                                      quality=88)
        logging.info("sheet %s", out / f"{key}.jpg")


def table(marks_file: Path) -> str:
    marks = json.loads(marks_file.read_text())
    lines = ["| model | edit | marked convincing | realism (gap closed) | success | grade |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    eye, real, succ = [], [], []
    for model, by_edit in marks["marks"].items():
        measured = json.loads((EYE / f"{model}.json").read_text())["per_edit"]
        for key, marked in by_edit.items():
            r = measured[key]
            share = sum(marked) / len(marked)
            eye.append(share)
            real.append(r["gap_closed"])
            succ.append(r["success"])
            lines.append(f"| {model} | {r['title']} | {sum(marked)} of {len(marked)} | {r['gap_closed']:+.2f} | "
                         f"{100 * r['success']:.0f}% | {grade(r['gap_closed'], r['success'])} |")
    lines += ["", f"Rank correlation with the eye's share over {len(eye)} kinds of edit: realism "
              f"{rank_correlation(real, eye):+.2f}, success {rank_correlation(succ, eye):+.2f}."]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sheets", help="measure a model and write its sheets to mark")
    s.add_argument("--weights", default=str(ROOT / "weights" / "stargan-studio"))
    s.add_argument("--limit", type=int, default=300, help="faces per set for realism")
    t = sub.add_parser("table", help="the marks beside realism and success, and the rank correlations")
    t.add_argument("--marks", type=Path, default=EYE / "marks.json")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    if args.cmd == "sheets":
        sheets(args.weights, args.limit)
    else:
        print(table(args.marks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
