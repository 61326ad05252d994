"""Which frames count for valence-arousal and action units, and the figures training computes.

A VA frame is annotated only where neither value is ``-5`` (docs/data.md): the loss, the frame
index (and its statistics) and the validation CCC each leave out a frame with one ``-5``. The
training CCC uses population moments, as ABAW's metric does. ``val/au_f1`` is the F1 of each
AU over annotated rows, an AU on at a probability of 0.5 or more (a logit of 0 or more, as
``evaluate`` predicts it), averaged over the AUs; ``val/ccc`` the population CCC over the
annotated frames. Every expected figure is written out here in NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from abaw_expr.data.task_index import build_task_index, task_stats
from abaw_expr.training.losses import ExpressionLoss, TaskLoss, batch_concordance
from abaw_expr.training.module import ExpressionModule

from .conftest import tiny_config

# rows: both annotated, valence only (arousal -5), arousal only (valence -5), neither
ONE_MISSING = np.array(
    [[0.2, 0.5], [0.6, -5.0], [-5.0, 0.3], [-5.0, -5.0], [-0.4, -0.1], [0.1, 0.9], [0.7, -0.6]]
)


def population_ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's CCC with population moments (divided by N), written out."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = len(x)
    mx, my = x.sum() / n, y.sum() / n
    covariance = ((x - mx) * (y - my)).sum() / n
    vx, vy = ((x - mx) ** 2).sum() / n, ((y - my) ** 2).sum() / n
    return 2 * covariance / (vx + vy + (mx - my) ** 2)


def both_annotated(values: np.ndarray) -> np.ndarray:
    return (values[..., 0] != -5) & (values[..., 1] != -5)


# --- VA: a frame with a single -5 is not annotated -----------------------------------------


def test_the_va_loss_leaves_out_a_frame_with_a_single_minus_five():
    truth = torch.tensor(ONE_MISSING, dtype=torch.float32)[None]
    predicted = torch.tensor(
        [[[0.1, 0.4], [0.5, 0.2], [0.3, 0.1], [0.0, 0.0], [-0.2, 0.1], [0.3, 0.6], [0.4, -0.2]]]
    )
    _, parts = TaskLoss(("va",), ExpressionLoss())(predicted, {"va": truth})
    keep = both_annotated(ONE_MISSING)
    assert keep.sum() == 4
    t, p = ONE_MISSING[keep], predicted[0].numpy()[keep]
    expected = 1 - (population_ccc(t[:, 0], p[:, 0]) + population_ccc(t[:, 1], p[:, 1])) / 2
    assert parts["va"].item() == pytest.approx(expected, abs=1e-6)


def _write_va_video(root, name, values, images):
    (root / "images" / name).mkdir(parents=True)
    for frame in images:
        (root / "images" / name / f"{frame + 1:05d}.jpg").touch()
    folder = root / "ann" / "VA_Estimation_Challenge" / "Train_Set"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{v:g},{a:g}" for v, a in values]
    (folder / f"{name}.txt").write_text("valence,arousal\n" + "\n".join(lines) + "\n")


def test_the_index_and_its_stats_leave_out_a_va_frame_with_a_single_minus_five(tmp_path):
    images = [0, 1, 2, 4, 5, 6]  # frame 3 has no face
    _write_va_video(tmp_path, "v", ONE_MISSING, images)
    folder = tmp_path / "ann" / "VA_Estimation_Challenge"
    splits = {"Train_Set": folder / "Train_Set"}
    (video,) = build_task_index(tmp_path / "images", {"va": splits})["Train_Set"]
    keep = both_annotated(ONE_MISSING)
    has_image = np.isin(np.arange(len(ONE_MISSING)), images)
    np.testing.assert_array_equal(video.annotated_for("va"), keep)
    np.testing.assert_array_equal(video.annotated, keep)
    np.testing.assert_array_equal(video.usable, keep & has_image)
    stats = task_stats([video], ["va"])["va"]
    used = ONE_MISSING[keep & has_image]
    assert (stats["annotated"], stats["usable"]) == (keep.sum(), len(used)) == (4, 4)
    assert stats["mean"]["valence"] == pytest.approx(used[:, 0].mean(), abs=1e-6)
    assert stats["mean"]["arousal"] == pytest.approx(used[:, 1].mean(), abs=1e-6)


def test_a_frame_annotated_for_any_one_task_is_annotated_and_usable():
    from pathlib import Path

    from abaw_expr.data.frame_index import VideoFrames

    labels = np.array([2, -1, -1, -1, -1], np.int8)
    va = np.array([[-5, -5], [0.3, 0.1], [-5, -5], [-5, -5], [0.2, -5]], np.float32)
    au = np.full((5, 12), -1, np.int8)
    au[2] = 0  # annotated for AU alone (no AU on)
    has_image = np.array([True, True, True, True, False])
    video = VideoFrames("v", Path("v"), labels, has_image, va=va, au=au)
    for task, expected in (
        ("expr", [1, 0, 0, 0, 0]),
        ("va", [0, 1, 0, 0, 0]),
        ("au", [0, 0, 1, 0, 0]),
    ):
        np.testing.assert_array_equal(video.annotated_for(task), np.array(expected, bool))
    np.testing.assert_array_equal(video.annotated, [True, True, True, False, False])
    np.testing.assert_array_equal(video.usable, [True, True, True, False, False])


# --- the training CCC: population moments ---------------------------------------------------


def test_the_training_ccc_uses_population_moments_on_a_few_frames():
    """Three frames whose means differ: the sample CCC (N - 1) is far from the population's."""
    truth = torch.tensor([[[0.1, -0.3], [0.4, 0.2], [-0.2, 0.5], [9.0, 9.0], [0.9, -0.8]]])
    predicted = torch.tensor([[[0.6, 0.3], [0.9, 0.4], [0.5, 0.9], [float("nan"), 7.0], [0, 0]]])
    keep = torch.tensor([[True, True, True, False, False]])
    ccc = batch_concordance(predicted, truth, keep).double().numpy()
    t, p = truth[0, :3].double().numpy(), predicted[0, :3].double().numpy()
    expected = [population_ccc(t[:, d], p[:, d]) for d in (0, 1)]
    np.testing.assert_allclose(ccc, expected, rtol=1e-6, atol=0)
    sample = [
        2
        * np.cov(t[:, d], p[:, d])[0, 1]
        / (t[:, d].var(ddof=1) + p[:, d].var(ddof=1) + (t[:, d].mean() - p[:, d].mean()) ** 2)
        for d in (0, 1)
    ]
    assert np.abs(np.subtract(sample, expected)).min() > 0.01  # the test tells them apart


def test_the_va_squared_error_term_is_the_mean_over_annotated_values():
    truth = torch.tensor(ONE_MISSING, dtype=torch.float32)[None]
    predicted = torch.tanh(torch.arange(14.0).reshape(1, 7, 2) / 7 - 1)
    _, plain = TaskLoss(("va",), ExpressionLoss())(predicted, {"va": truth})
    _, weighted = TaskLoss(("va",), ExpressionLoss(), va_mse_weight=0.5)(predicted, {"va": truth})
    keep = both_annotated(ONE_MISSING)
    error = predicted[0].numpy()[keep] - ONE_MISSING[keep]
    expected = (error**2).sum() / error.size
    assert weighted["va"].item() - plain["va"].item() == pytest.approx(0.5 * expected, abs=1e-6)


# --- validation: val/au_f1 and val/ccc against NumPy ----------------------------------------


@pytest.fixture(scope="module")
def validated():
    """Two validation batches of a VA + AU module whose outputs are set, not computed: logits
    on both sides of 0 and exactly 0, unannotated AU rows predicted on, VA frames with one -5,
    padded frames with labels. Returns (logged figures, the frames as NumPy)."""
    rng = np.random.default_rng(37)
    module = ExpressionModule(tiny_config(model__tasks=["va", "au"]).to_dict(), False).eval()
    logged = {}
    module.log = lambda key, value, **_: logged.__setitem__(key, float(value))
    frames = {"va": [], "va_out": [], "au": [], "au_out": []}
    for b, t in ((2, 9), (3, 5)):
        va = rng.uniform(-1, 1, (b, t, 2))
        va[0, 1] = ONE_MISSING[1]
        va[0, 2] = ONE_MISSING[2]
        va[-1, 0] = -5
        va_out = np.tanh(0.8 * va + rng.normal(0.2, 0.3, (b, t, 2)))
        au = (rng.random((b, t, 12)) < 0.4).astype(np.float32)
        au[0, 3] = -1  # unannotated rows, with every AU predicted on
        au[-1, 1] = -1
        au_out = rng.choice([-2.0, -0.3, 0.0, 0.2, 0.5, 0.7, 1.0, 2.5], (b, t, 12))
        au_out[0, 3] = au_out[-1, 1] = 3.0
        mask = np.ones((b, t), bool)
        mask[-1, -2:] = False  # padding: labelled frames that count for nothing
        outputs = torch.from_numpy(np.concatenate([va_out, au_out], -1)).float()
        module.forward = lambda x, m, outputs=outputs: outputs
        batch = {
            "x": torch.zeros(b, t, 1),
            "mask": torch.from_numpy(mask),
            "va": torch.from_numpy(va).float(),
            "au": torch.from_numpy(au),
        }
        with torch.no_grad():
            module.validation_step(batch, 0)
        frames["va"].append(va[mask].astype(np.float32))
        frames["va_out"].append(outputs[..., :2].numpy()[mask])
        frames["au"].append(au[mask])
        frames["au_out"].append(au_out[mask])
    module.on_validation_epoch_end()
    return logged, {k: np.concatenate(v) for k, v in frames.items()}


def test_val_au_f1_is_the_f1_of_annotated_rows_with_an_au_on_from_a_logit_of_zero(validated):
    logged, f = validated
    rows = f["au"][:, 0] != -1
    truth, on = f["au"][rows] == 1, f["au_out"][rows] >= 0  # probability 0.5 or more
    assert (~rows).sum() == 4 and (f["au_out"][rows] == 0).sum() > 10  # the boundary is tested
    f1 = []
    for unit in range(12):
        tp = (truth[:, unit] & on[:, unit]).sum()
        wrong = (truth[:, unit] != on[:, unit]).sum()
        f1.append(2 * tp / (2 * tp + wrong) if 2 * tp + wrong else 0.0)
    assert logged["val/au_f1"] == pytest.approx(np.mean(f1), abs=1e-9)


def test_val_ccc_is_the_population_ccc_of_the_annotated_frames(validated):
    logged, f = validated
    keep = both_annotated(f["va"])
    assert (~keep).sum() == 6  # 2 x (one -5 in either column, and two); padding left out
    ccc = [population_ccc(f["va"][keep, d], f["va_out"][keep, d]) for d in (0, 1)]
    assert logged["val/ccc_valence"] == pytest.approx(ccc[0], abs=1e-6)
    assert logged["val/ccc_arousal"] == pytest.approx(ccc[1], abs=1e-6)
    assert logged["val/ccc"] == pytest.approx(np.mean(ccc), abs=1e-6)
    assert logged["val/score"] == pytest.approx(np.mean(ccc) + logged["val/au_f1"], abs=1e-9)
