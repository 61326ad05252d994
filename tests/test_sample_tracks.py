"""The sample's valence-arousal and action-unit tracks: ABAW's layout, labels the faces show,
and the expression sample it grew out of left byte for byte as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

from abaw_expr.data.sample import write_sample

# The expression sample as it was before the VA and AU tracks were added (commit 825c63a):
# ``write_sample(root, 4, 2, 120, seed=0, workers=1)``, then ``tree_hash`` below over
# ``annotations`` and over ``cropped_aligned`` (Pillow 13.0.0, numpy 2.4.6). The tracks draw
# from generators of their own, so these files (and the README's figures) must not change. The
# JPEG bytes also depend on Pillow's libjpeg: after a Pillow upgrade, recompute from that commit.
ANNOTATIONS_SHA256 = "8df3858a51ddb95bf6681b1c2b3e275d99a099393b25ceccc0f4015e43f1a908"
IMAGES_SHA256 = "ddcdeba9d6a38e8f07f80e50e1ccdb6c9ef94c0614f8b345582a2700032fe6ba"


def tree_hash(root: Path, folder: str) -> str:
    """sha256 over ``relative/path sha256-of-file`` lines of every file under ``root/folder``."""
    digest = hashlib.sha256()
    for path in sorted((root / folder).rglob("*")):
        if path.is_file():
            line = f"{path.relative_to(root).as_posix()} {hashlib.sha256(path.read_bytes()).hexdigest()}\n"
            digest.update(line.encode())
    return digest.hexdigest()


def test_expression_sample_unchanged_byte_for_byte(tmp_path: Path) -> None:
    write_sample(tmp_path, 4, 2, 120, seed=0, workers=1)
    assert tree_hash(tmp_path, "annotations") == ANNOTATIONS_SHA256
    assert tree_hash(tmp_path, "cropped_aligned") == IMAGES_SHA256
