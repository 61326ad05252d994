"""A stand-in for abaw_expr.video.live.predictor.LivePredictor until it lands (same contract)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from abaw_expr.data.images import eval_transform
from abaw_expr.faces import MultiFaceTracker, align_face, build_detector
from abaw_expr.inference.causal import window_end_values
from abaw_expr.tasks import AU_NAMES, CLASS_NAMES
from abaw_expr.video.outputs import person_colour


@dataclass
class LiveFace:
    person: str
    colour: str
    box: tuple
    row: dict


class StandInPredictor:
    def __init__(self, model, options, seq_len, name, out_dir=None):
        self.model, self.options, self.seq_len, self.name = model, options, seq_len, name
        self.tracker = MultiFaceTracker(
            build_detector(options.detector, options.upsample),
            detect_every=options.detect_every,
            detect_width=options.detect_width,
        )
        self.transform = eval_transform()
        self.windows: dict[int, deque] = {}
        self.people: dict[int, int] = {}

    @torch.inference_mode()
    def __call__(self, rgb, number, time_s, arrival):
        out = []
        for tid, box, points in self.tracker(rgb):
            try:
                crop = align_face(rgb, points, self.options.size)
            except ValueError:
                continue
            batch = torch.from_numpy(crop[None]).permute(0, 3, 1, 2)
            feature = self.model.backbone(self.transform(batch))[0]
            window = self.windows.setdefault(tid, deque(maxlen=self.seq_len))
            window.append(feature)
            values = window_end_values(
                self.model.head, torch.stack(list(window))[None], [len(window)]
            )
            parts, at = {}, 0
            for task in getattr(self.model.head, "tasks", ("expr",)):
                width = {"expr": len(CLASS_NAMES), "va": 2, "au": len(AU_NAMES)}[task]
                parts[task], at = values[0, at : at + width].numpy(), at + width
            k = self.people.setdefault(tid, len(self.people))
            row = {}
            if "expr" in parts:
                label = int(np.argmax(parts["expr"]))
                row = {"label": label, "expression": CLASS_NAMES[label]}
                row.update({c: float(p) for c, p in zip(CLASS_NAMES, parts["expr"], strict=True)})
            if "va" in parts:
                row.update(valence=float(parts["va"][0]), arousal=float(parts["va"][1]))
            if "au" in parts:
                row.update({a: int(p >= 0.5) for a, p in zip(AU_NAMES, parts["au"], strict=True)})
            out.append(
                LiveFace(f"{self.name}_{k + 1}", person_colour(k), tuple(map(float, box)), row)
            )
        return out

    def close(self):
        pass
