#!/usr/bin/env python3
"""JPEG decoding fixtures: files written by Pillow and the pixels Pillow decodes from them.

The official pipeline reads photos with Pillow (`diffusers.utils.load_image`: `Image.open`,
`ImageOps.exif_transpose`, `convert("RGB")`), i.e. libjpeg-turbo with the islow IDCT and fancy
chroma upsampling. This writes, from an odd-sized crop of astronaut.png (odd sides exercise the
chroma edge handling), JPEGs in 4:4:4, 4:2:2, 4:2:0, progressive, grayscale and CMYK, seven with
an EXIF orientation (2-8), and a truncated one (Pillow refuses it), each next to `<name>.png`
holding what Pillow decodes. grace_hopper.jpg (real data, not committed) gets its decode as
`grace_hopper.png`.

Pinned environment (as gen_clip_text.py, with the official Pillow):

    venv/bin/pip install Pillow==10.0.1
    bash tests/scripts/fetch_real_data.sh
    venv/bin/python tests/scripts/gen_jpeg.py

Re-running rewrites identical files.
"""

import io
import os
from pathlib import Path

import PIL
from PIL import Image, ImageOps

assert PIL.__version__ == "10.0.1", PIL.__version__
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/jpeg"
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))


def pillow_pixels(path: Path) -> Image.Image:
    """What diffusers' load_image gives."""
    img = Image.open(path)
    img = ImageOps.exif_transpose(img)
    return img.convert("RGB")


def write(name: str, img: Image.Image, **save):
    path = OUT / f"{name}.jpg"
    img.save(path, "JPEG", quality=90, **save)
    pillow_pixels(path).save(OUT / f"{name}.png", optimize=True)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    src = Image.open(DATA / "images/astronaut.png").convert("RGB").crop((171, 51, 268, 126))
    write("s444", src, subsampling=0)
    write("s422", src, subsampling=1)
    write("s420", src, subsampling=2)
    write("progressive", src, subsampling=2, progressive=True)
    write("gray", src.convert("L"))
    write("cmyk", src.convert("CMYK"))
    for orientation in range(2, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        write(f"exif{orientation}", src, subsampling=2, exif=exif.tobytes())
    whole = (OUT / "s420.jpg").read_bytes()
    (OUT / "truncated.jpg").write_bytes(whole[: len(whole) * 3 // 5])
    try:
        Image.open(OUT / "truncated.jpg").load()
        raise SystemExit("Pillow decoded the truncated file")
    except OSError as e:
        print("truncated.jpg refused by Pillow:", e)
    pillow_pixels(DATA / "images/grace_hopper.jpg").save(OUT / "grace_hopper.png", optimize=True)
    print("wrote", sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
