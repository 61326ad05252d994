"""``predict --video`` keeps what the temporal head needs, never the crops: memory must not grow
with the video (a one-hour video held ~4 GB more than a short one)."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from abaw_expr.video.predict import _BackboneBatcher

CROP = (112, 112, 3)  # 37,632 bytes


class FakeBackbone:
    """The runner's interface: batches of ``chunk``, one feature per image (its first pixel),
    optionally held until ``go`` is set; counts the images it has seen."""

    feature_dim = 4

    def __init__(self, chunk: int = 8, hold: bool = False):
        self.chunk, self.seen = chunk, 0
        self.go = threading.Event()
        if not hold:
            self.go.set()

    def loader_batch_size(self, batch_size: int) -> int:
        return -(-batch_size // self.chunk) * self.chunk

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.go.wait()
        self.seen += len(images)
        return images[:, :1, 0, 0].float().repeat(1, self.feature_dim)


def crop(number: int) -> np.ndarray:
    return np.full(CROP, number % 200, np.uint8)


def expected(batcher: _BackboneBatcher, numbers) -> list[float]:
    """The fake features of the crops of ``numbers``: their first pixel, normalised."""
    images = torch.from_numpy(np.stack([crop(n) for n in numbers])).permute(0, 3, 1, 2)
    return batcher.transform(images)[:, 0, 0, 0].tolist()


def test_a_face_pass_ahead_of_the_backbone_waits_instead_of_piling_up_crops():
    backbone = FakeBackbone(hold=True)  # the backbone stalls: the face pass runs ahead
    batcher = _BackboneBatcher(backbone, 8, torch.device("cpu"))
    fed = []

    def face_pass():
        for number in range(1, 201):
            batcher(number, crop(number))
            fed.append(number)

    producer = threading.Thread(target=face_pass, daemon=True)
    producer.start()
    try:
        time.sleep(1.0)
        # at most the batches in flight plus the one being filled
        assert len(fed) <= (getattr(batcher, "IN_FLIGHT", 2) + 1) * batcher.batch_size
    finally:
        backbone.go.set()  # a failure must not leave the backbone's thread waiting forever
    producer.join(timeout=30)
    frames, features = batcher.result()
    assert frames.tolist() == list(range(200))
    assert features[:, 0].tolist() == expected(batcher, range(1, 201))


def test_the_crops_of_ended_tracks_are_not_kept_to_the_end_of_the_video():
    """Many short tracks (shot cuts): their crops go to the backbone with the others', not wait
    for a batch of their own; crop memory stays that of a few batches."""
    backbone = FakeBackbone()
    batcher = _BackboneBatcher(backbone, 8, torch.device("cpu"))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        number = 0
        for track in range(100):  # 100 tracks of 5 faces each, one after the other
            for _ in range(5):
                number += 1
                batcher(number, crop(number), track)
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    # none waits for its track: all but the batches in flight and the one being filled are done
    assert backbone.seen >= number - (batcher.IN_FLIGHT + 1) * batcher.batch_size
    assert held < 6 * batcher.batch_size * np.prod(CROP)  # a few batches, not 500 crops
    parts = batcher.by_track()
    assert list(parts) == list(range(100))
    frames, features = parts[7]
    assert frames.tolist() == [35, 36, 37, 38, 39]
    assert features[:, 0].tolist() == expected(batcher, range(36, 41))


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_the_yunet_detector_does_not_grow_by_the_call():
    """yuface's wrapper leaked ~36 KB a call (a face pass grew with the video)."""
    pytest.importorskip("yuface")
    from abaw_expr.faces.yunet import YuNetDetector

    detector = YuNetDetector()
    frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), np.uint8)
    for _ in range(20):
        detector.detect(frame)
    before = _rss_kb()
    for _ in range(200):
        detector.detect(frame)
    assert _rss_kb() - before < 2_500  # the wrapper: about 7,200 KB
