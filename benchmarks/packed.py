"""Does a packed frame format beat loose JPEG files? Reads and decodes the same faces both ways.

    python benchmarks/packed.py [--videos 6] [--frames 300]

Loose: one ``open`` + read + Pillow decode per ``cropped_aligned/<video>/NNNNN.jpg`` (what the
data loader does). Packed: the same JPEG bytes concatenated into one file per video with an
offsets array, read with one ``os.pread`` per frame and decoded the same way. The page cache is
warm for both (each is read once before timing), as in every epoch after the first; a cold
first epoch is bound by the disk, which packing helps more, and is not measured here.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from abaw_expr.synthetic.sample import write_sample


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_sample(root / "s", train_videos=args.videos, val_videos=1, frames=args.frames)
        folders = sorted(p for p in (root / "s" / "cropped_aligned").iterdir() if p.is_dir())
        files = [sorted(f.iterdir()) for f in folders]
        packed = []
        for folder, names in zip(folders, files, strict=True):
            blobs = [p.read_bytes() for p in names]
            offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])])
            path = root / f"{folder.name}.pack"
            path.write_bytes(b"".join(blobs))
            packed.append((path, offsets))

        def loose() -> int:
            n = 0
            for names in files:
                for p in names:
                    with open(p, "rb") as handle:
                        decode(handle.read())
                    n += 1
            return n

        def from_packs() -> int:
            n = 0
            for path, offsets in packed:
                fd = os.open(path, os.O_RDONLY)
                try:
                    for a, b in zip(offsets[:-1], offsets[1:], strict=True):
                        decode(os.pread(fd, int(b - a), int(a)))
                        n += 1
                finally:
                    os.close(fd)
            return n

        result = {}
        for name, fn in (("loose_fps", loose), ("packed_fps", from_packs)):
            fn()  # warm the page cache
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                n = fn()
                best = min(best, time.perf_counter() - start)
            result[name] = round(n / best)
        result["frames"] = n
        result["packed_over_loose"] = round(result["packed_fps"] / result["loose_fps"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
