"""From a trained model to a prediction for every frame of every video.

1. Windows of ``seq_len`` over each video's frames with a face image, every ``stride`` frames
   (``stride < seq_len`` overlaps them); the softmax probabilities of a frame are averaged
   over the windows that hold it.
2. Optional temporal smoothing: a centred moving average of ``smooth`` frames.
3. Frames without a face take the probabilities of the nearest frame that has one (the
   earlier one on a tie). A video with no face at all gets the uniform distribution, whose
   arg-max is Neutral, the most frequent class of Aff-Wild2, and a warning.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import DataLoader

from abaw_expr.data.feature_cache import FeatureCache
from abaw_expr.data.frame_index import FrameIndex, VideoFrames
from abaw_expr.data.images import FrameImages
from abaw_expr.data.windows import make_windows
from abaw_expr.inference.engine import BackboneRunner, autocast_for
from abaw_expr.model.temporal import TASK_WIDTHS, ExpressionModel, split_outputs, task_slices
from abaw_expr.tasks import NUM_CLASSES

log = logging.getLogger(__name__)


def fill_from_nearest(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Rows where ``known`` is False take the row of the nearest known index (earlier on a tie)."""
    have = np.flatnonzero(known)
    if len(have) == 0 or len(have) == len(known):
        return values
    idx = np.arange(len(known))
    right = np.clip(np.searchsorted(have, idx), 0, len(have) - 1)
    left = np.clip(right - 1, 0, len(have) - 1)
    take_left = np.abs(idx - have[left]) <= np.abs(have[right] - idx)
    nearest = np.where(take_left, have[left], have[right])
    return values[nearest]


def smooth_probabilities(probs: np.ndarray, known: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``window`` frames, using only frames with a face."""
    if window <= 1:
        return probs
    kernel = np.ones(window)
    weights = np.convolve(known.astype(np.float64), kernel, mode="same")
    summed = np.stack(
        [np.convolve(probs[:, c] * known, kernel, mode="same") for c in range(probs.shape[1])],
        axis=1,
    )
    out = probs.copy()
    ok = known & (weights > 0)
    out[ok] = summed[ok] / weights[ok, None]
    return out


def frame_features(
    backbone: BackboneRunner,
    video: VideoFrames,
    image_size: int,
    batch_size: int,
    num_workers: int,
    device: torch.device,
) -> tuple[np.ndarray, torch.Tensor]:
    """Backbone features of every readable face image of a video, once per frame.

    Returns the frame numbers and their (n, feature_dim) features; unreadable images are dropped.
    """
    frames = np.flatnonzero(video.has_image)
    items = [(int(f), 0, video.path(int(f))) for f in frames]
    loader = DataLoader(
        FrameImages(items, image_size),
        batch_size=backbone.loader_batch_size(batch_size),
        num_workers=num_workers,
    )
    chunks, kept = [], []
    for images, frame_ids, _, ok in loader:
        chunks.append(backbone(images[ok]))
        kept.append(frame_ids[ok].numpy())
    if not chunks:
        return np.zeros(0, np.int64), torch.zeros(0, backbone.feature_dim, device=device)
    return np.concatenate(kept), torch.cat(chunks)


def frame_values(outputs: torch.Tensor, tasks) -> torch.Tensor:
    """The head's raw outputs as what is averaged over windows: expression probabilities
    (softmax), valence and arousal as they are, AU probabilities (sigmoid)."""
    if tuple(tasks) == ("expr",):
        return torch.softmax(outputs, dim=-1)
    parts = split_outputs(outputs, tasks)
    convert = {"expr": lambda x: torch.softmax(x, -1), "va": lambda x: x, "au": torch.sigmoid}
    return torch.cat([convert[t](x) for t, x in parts.items()], dim=-1)


def frame_prior(tasks, width: int) -> np.ndarray:
    """The values of a video without a single face: uniform expression probabilities (whose
    arg-max is Neutral, Aff-Wild2's most frequent class), valence and arousal 0, no AU."""
    if tuple(tasks) == ("expr",):
        return np.full(width, 1.0 / width)
    prior = {"expr": np.full(NUM_CLASSES, 1.0 / NUM_CLASSES), "va": np.zeros(2)}
    return np.concatenate([prior.get(t, np.zeros(TASK_WIDTHS[t])) for t in task_slices(tasks)])


def checked_stride(stride: int, seq_len: int) -> int:
    if stride > seq_len:
        log.warning(
            "window stride %d > sequence length %d would leave frames unseen; using %d",
            stride,
            seq_len,
            seq_len,
        )
        return seq_len
    return stride


@torch.inference_mode()
def predict_probabilities(
    model: ExpressionModel,
    index: FrameIndex,
    feature_cache: FeatureCache | None = None,
    seq_len: int = 64,
    stride: int = 32,
    image_size: int = 112,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    smooth: int = 0,
    progress: bool = False,
    engine: str = "auto",
) -> list[np.ndarray]:
    """Per video, a (num_frames, 8) float32 array of class probabilities for every frame.

    The backbone runs once per frame (or features come from ``feature_cache``); only the
    temporal head runs per window, so overlapping windows cost little.
    """
    stride = checked_stride(stride, seq_len)
    device = torch.device(device)
    model = model.to(device).eval()
    runner = None
    if feature_cache is None:
        frames_to_do = sum(int(v.has_image.sum()) for v in index.videos)
        runner = BackboneRunner(model.backbone, device, engine, batch_size, frames_to_do)
    videos = index.videos
    if progress:
        from tqdm import tqdm

        videos = tqdm(videos, desc="predict", unit="video")
    out = []
    for video in videos:
        if feature_cache is not None:
            frames = np.flatnonzero(video.has_image)
            features = torch.from_numpy(feature_cache.read(video.name, frames)).to(device)
        else:
            frames, features = frame_features(
                runner, video, image_size, batch_size, num_workers, device
            )
        out.append(
            window_probabilities(
                model.head,
                features,
                frames,
                video.num_frames,
                seq_len,
                stride,
                batch_size,
                smooth,
                name=video.name,
            )
        )
    return out


@torch.inference_mode()
def window_probabilities(
    head: torch.nn.Module,
    features: torch.Tensor,
    frames: np.ndarray,
    num_frames: int,
    seq_len: int = 64,
    stride: int = 32,
    batch_size: int = 64,
    smooth: int = 0,
    name: str = "video",
) -> np.ndarray:
    """(num_frames, 8) float32 probabilities of a video from the features of its face frames.

    ``features[i]`` belongs to frame index ``frames[i]`` (0-based, increasing). The head runs on
    windows of ``seq_len`` of those frames every ``stride``; overlapping windows are averaged,
    then smoothed, then frames without a face are filled from the nearest one.
    """
    device = features.device
    tasks = getattr(head, "tasks", ("expr",))
    prior = frame_prior(tasks, getattr(head, "output_width", NUM_CLASSES))
    total = np.zeros((num_frames, len(prior)), dtype=np.float64)
    count = np.zeros(num_frames, dtype=np.int64)
    windows = make_windows(np.arange(len(frames)), seq_len, stride)
    for start in range(0, len(windows), batch_size):
        rows = torch.from_numpy(windows.frames[start : start + batch_size]).to(device)
        mask = torch.from_numpy(windows.mask[start : start + batch_size]).to(device)
        with autocast_for(device):
            logits = head(features[rows], mask)
        probs = frame_values(logits.float(), tasks).cpu().numpy()
        m = mask.cpu().numpy()
        positions = frames[windows.frames[start : start + batch_size]]
        np.add.at(total, positions[m], probs[m])
        np.add.at(count, positions[m], 1)
    known = count > 0
    probs = np.tile(prior, (num_frames, 1))
    probs[known] = total[known] / count[known, None]
    if not known.any():
        log.warning(
            "%s: no frame with a readable face; every frame predicted from the prior "
            "(uniform expression probabilities: Neutral; valence and arousal 0; no AU)",
            name,
        )
    probs = smooth_probabilities(probs, known, smooth)
    return fill_from_nearest(probs, known).astype(np.float32)
