"""The face pass alone (``track_people``: whole-frame searches, searches near each track,
landmarks, alignment), by back end and by how often the whole frame is searched (K, the
``--detect-every`` option): milliseconds a frame (wall time of the pass, decoding included, loading the detector not), the frames where the face was found among
those where it is in view, and the frames with a face where nobody is.

    python benchmarks/face_pass.py [--frames 300] [--every 5 10 20 40] [--json]

Clips, 640x360 at 25 fps: ``drawn``, the sample's face (as ``predict --video``'s benchmark and
the demo draw it) out of view for 2 s; ``real``, Grace Hopper's portrait from matplotlib
sliding to and fro, out of view for 2 s; ``empty``, the drawn clip's moving background with
nobody, where every frame is searched whole (no track to follow). Run one process at a time
on a quiet machine; record the figures in benchmarks/RESULTS.md with date, machine and commit.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np

from abaw_expr.faces import build_detector
from abaw_expr.synthetic.video import write_synthetic_video
from abaw_expr.video.tracks import FaceOptions, track_people
from detectors import portrait_clip  # benchmarks/detectors.py, beside this script
from report import emit, environment  # benchmarks/report.py, beside this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--every", type=int, nargs="+", default=[5, 10, 20, 40])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    n = args.frames
    absent = (n // 3, n // 3 + 50)
    detectors = ["dlib-hog"] + (["yunet"] if importlib.util.find_spec("yuface") else [])
    result: dict = {"frames": n, "absent": f"frames {absent[0]}-{absent[1]}"}
    with tempfile.TemporaryDirectory(prefix="abaw-face-pass-") as tmp:
        root = Path(tmp)
        visible = np.ones(n, bool)
        visible[absent[0] - 1 : absent[1]] = False
        clips = {"drawn": visible, "real": visible, "empty": np.zeros(n, bool)}
        write_synthetic_video(root / "drawn.mp4", n, absent=(absent,), seed=0)
        portrait_clip(root / "real.mp4", n, absent)
        write_synthetic_video(root / "empty.mp4", n, no_face=True, seed=0)
        for clip, truth in clips.items():
            for detector in detectors:
                for every in args.every:
                    options = FaceOptions(detector=detector, detect_every=every)
                    start = time.perf_counter()
                    build_detector(detector)  # what the pass spends loading it, taken off
                    loading = time.perf_counter() - start
                    start = time.perf_counter()
                    people = track_people(root / f"{clip}.mp4", options, lambda *a: None)
                    ms = 1000 * (time.perf_counter() - start - loading) / n
                    found = np.zeros(n, bool)
                    for faces, _ in people:
                        found |= faces.has_face
                    result[f"{clip}/{detector}/K={every}"] = {
                        "ms_per_frame": round(ms, 2),
                        "found": f"{int(found[truth].sum())} of {int(truth.sum())}",
                        "invented": int(found[~truth].sum()),
                        "people": len(people),
                    }
    emit({**result, **environment()}, args.json, 40)


if __name__ == "__main__":
    main()
