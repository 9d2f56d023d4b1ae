"""A gallery of edits of photos, as a user sees them: the face region of the full photo after each edit.

    python benchmarks/edit_gallery.py demo/examples/astronaut.png --out docs/edits_astronaut.png
    python benchmarks/edit_gallery.py ../shared/data/celeba_wild_sample/deepface_img1.jpg --out /tmp/wild.png
    python benchmarks/edit_gallery.py PHOTO [PHOTO ...] --weights A --weights B --out /tmp/compare.png
    python benchmarks/edit_gallery.py PHOTO [PHOTO ...] --related both --out /tmp/related.png
    python benchmarks/edit_gallery.py PHOTO [PHOTO ...] --regions both --out /tmp/regions.png

Columns: the original, then each edit (a setting of one or two controls) at strength 1, pasted back into the
photo (the editor's default mode). One row per photo, weights folder, ``--related`` and ``--regions`` choice (the
folder's name, "lone" for edits without their related attributes and "anywhere" for edits not kept to their
regions are written on the row's first tile). The crop is the
face's box, enlarged, so the edits can be judged at photo resolution.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stargan.inference import DEFAULT_WEIGHTS, Editor  # noqa: E402

EDITS = {
    "original": {},
    "black hair": {"Black_Hair": 1.0},
    "blond hair": {"Blond_Hair": 1.0},
    "brown hair": {"Brown_Hair": 1.0},
    "gray hair": {"Gray_Hair": 1.0},
    "gender": None,  # flipped from what the model reads
    "age": None,
    "smiling": {"Smiling": 1.0},
    "happy": {"happy": 1.0},
    "surprised": {"surprised": 1.0},
    "angry": {"angry": 1.0},
}


def gallery_row(editor: Editor, photo: str, tile_size: int, label: str = "",
                related: bool = True, regions: bool = True) -> list[Image.Image]:
    prepared = editor.prepare(photo)
    read = prepared.faces[0].labels
    x0, y0, x1, y1 = prepared.faces[0].face.box
    w, h = x1 - x0, y1 - y0
    box = (max(0, int(x0 - 0.5 * w)), max(0, int(y0 - 0.7 * h)), int(x1 + 0.5 * w), int(y1 + 0.4 * h))
    tiles = []
    for name, settings in EDITS.items():
        if settings is None:
            attr = "Male" if name == "gender" else "Young"
            settings = {attr: 0.0 if read.get(attr, 0.0) > 0.5 else 1.0}
        image = editor.edit(prepared, settings, related=related, regions=regions).photo if settings else prepared.photo
        tile = Image.fromarray(np.asarray(image)).crop(box).resize((tile_size, tile_size), Image.LANCZOS)
        text = f"{label}: {name}" if label and name == "original" else name
        ImageDraw.Draw(tile).text((4, 4), text, fill=(255, 255, 0))
        tiles.append(tile)
    return tiles


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", nargs="+")
    p.add_argument("--weights", action="append", help="weights folder (repeat to compare models; default: shipped)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tile", type=int, default=192)
    p.add_argument("--related", choices=("on", "off", "both"), default="on",
                   help="move the attributes that go with an edit (on, the demo's default), not (off), "
                        "or a row of each (both)")
    p.add_argument("--regions", choices=("on", "off", "both"), default="on",
                   help="keep each edit to its region (on, the demo's default), not (off), or a row of each (both)")
    args = p.parse_args()

    editors = [(Path(w).name if len(args.weights or []) > 1 else "", Editor(w))
               for w in (args.weights or [str(DEFAULT_WEIGHTS)])]
    choices = {"on": [True], "off": [False], "both": [False, True]}
    rows = [gallery_row(editor, photo, args.tile,
                        " ".join(filter(None, [label, "" if related else "lone", "" if regions else "anywhere"])),
                        related, regions)
            for photo in args.photos for label, editor in editors
            for related in choices[args.related] for regions in choices[args.regions]]
    sheet = Image.new("RGB", (args.tile * len(rows[0]), args.tile * len(rows)))
    for r, tiles in enumerate(rows):
        for i, tile in enumerate(tiles):
            sheet.paste(tile, (i * args.tile, r * args.tile))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
