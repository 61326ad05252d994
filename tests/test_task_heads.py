"""Task heads for ABAW's three tracks on the paper's representation, and their losses.

Every subset of tasks runs forward and backward; the expression-only head is the paper's to
the parameter; each track's loss sees only the frames that track annotates (the rest may hold
anything, NaN included, and get no gradient); and a head trained on made-up features learns
valence-arousal and action units well above a constant.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from abaw_expr.config import Config
from abaw_expr.errors import InputError
from abaw_expr.evaluation.metrics import binary_f1, concordance
from abaw_expr.model.build import build_model
from abaw_expr.model.temporal import TASK_WIDTHS, TemporalHead, split_outputs, task_slices
from abaw_expr.training.losses import ExpressionLoss, TaskLoss, batch_concordance

SUBSETS = [s for r in (1, 2, 3) for s in itertools.combinations(TASK_WIDTHS, r)]


@pytest.mark.parametrize("tasks", SUBSETS, ids=["+".join(s) for s in SUBSETS])
@pytest.mark.parametrize("variant", ["combine", "no_att_trans"])
def test_every_subset_of_tasks_runs_forward_and_backward(tasks, variant):
    torch.manual_seed(0)
    head = TemporalHead(variant, tasks=tasks[::-1]).train()  # any order given, one kept
    assert head.tasks == tasks
    x = torch.randn(2, 12, 888, requires_grad=True)
    out = head(x)
    assert out.shape == (2, 12, sum(TASK_WIDTHS[t] for t in tasks)) == (2, 12, head.output_width)
    parts = split_outputs(out, tasks)
    if "va" in parts:
        assert parts["va"].abs().max() <= 1
    out.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in head.parameters())


def test_the_expression_head_is_the_papers():
    torch.manual_seed(3)
    paper = TemporalHead("combine")
    torch.manual_seed(3)
    chosen = TemporalHead("combine", tasks=["expr"])
    assert [n for n, _ in paper.named_parameters()] == [n for n, _ in chosen.named_parameters()]
    assert not any("va_" in n or "au_" in n for n, _ in paper.named_parameters())
    x = torch.randn(1, 64, 888)
    assert torch.equal(paper.eval()(x), chosen.eval()(x))
    assert Config().model.tasks == ["expr"]


def test_a_multitask_head_shares_the_representation():
    torch.manual_seed(0)
    head = TemporalHead("combine", tasks=("expr", "va", "au"), dropout=0.0).eval()
    x = torch.randn(1, 16, 888)
    parts = split_outputs(head(x), head.tasks)
    with torch.no_grad():
        joined = torch.cat([x, head.attention(x), head.encoder(x)], -1)
        torch.testing.assert_close(parts["expr"], head.classifier(joined))
        torch.testing.assert_close(parts["va"], torch.tanh(head.va_regressor(joined)))
        torch.testing.assert_close(parts["au"], head.au_classifier(joined))


@pytest.mark.parametrize("tasks", [[], ["expr", "expr"], ["valence"]])
def test_bad_task_lists_are_refused(tasks):
    with pytest.raises(InputError, match="model tasks"):
        TemporalHead(tasks=tasks)


def test_the_config_builds_the_tasks_it_names():
    config = Config()
    config.model.tasks = ["au", "va"]
    model = build_model(config, with_backbone=False)
    assert model.head.tasks == ("va", "au") and model.head.classifier is None
    assert task_slices(model.head.tasks) == {"va": slice(0, 2), "au": slice(2, 14)}


# --- losses -------------------------------------------------------------------------------


def _targets(rng, b=3, t=20):
    labels = torch.from_numpy(rng.integers(0, 8, (b, t)))
    labels[:, :4] = -1
    va = torch.from_numpy(rng.uniform(-1, 1, (b, t, 2)).astype(np.float32))
    va[:, 5:9] = -5
    au = torch.from_numpy((rng.random((b, t, 12)) < 0.3).astype(np.float32))
    au[:, 10:15] = -1
    return {"labels": labels, "va": va, "au": au}


def _unannotated(targets):
    return {
        "expr": targets["labels"] < 0,
        "va": (targets["va"] == -5).all(-1),
        "au": targets["au"][..., 0] == -1,
    }


@pytest.mark.parametrize("task", list(TASK_WIDTHS))
def test_a_frame_without_a_tracks_label_moves_nothing_of_that_track(task):
    rng = np.random.default_rng(0)
    targets = _targets(rng)
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[2, -3:] = False  # padding counts for no track either
    tasks = tuple(TASK_WIDTHS)
    loss = TaskLoss(tasks, ExpressionLoss())
    where = task_slices(tasks)[task]
    outputs = torch.randn(3, 20, 22)
    outputs[..., task_slices(tasks)["va"]] = outputs[..., task_slices(tasks)["va"]].tanh()
    out_of_track = _unannotated(targets)[task] | ~mask

    def run(values):
        values = values.clone().requires_grad_(True)
        _, parts = loss(values, targets, mask)
        parts[task].backward()
        return parts[task].detach(), values.grad

    before, grad = run(outputs)
    junk = outputs.clone()
    junk[..., where] = torch.where(out_of_track[..., None], float("nan"), junk[..., where])
    after, junk_grad = run(junk)
    assert torch.isfinite(before) and torch.equal(before, after)
    assert torch.equal(grad, junk_grad)
    assert (grad[out_of_track][:, where] == 0).all()
    assert (grad[~out_of_track][:, where] != 0).any()
    others = [s for t, s in task_slices(tasks).items() if t != task]
    assert all((grad[..., s] == 0).all() for s in others)  # one track's loss, one head


def test_va_loss_is_one_minus_the_mean_ccc_of_the_annotated_frames():
    rng = np.random.default_rng(1)
    targets = _targets(rng)
    outputs = torch.from_numpy(rng.uniform(-1, 1, (3, 20, 2)).astype(np.float32))
    _, parts = TaskLoss(("va",), ExpressionLoss())(outputs, targets)
    keep = (targets["va"] != -5).all(-1).numpy()
    truth, predicted = targets["va"].numpy()[keep], outputs.numpy()[keep]
    expected = 1 - np.mean([concordance(truth[:, d], predicted[:, d]) for d in (0, 1)])
    assert parts["va"].item() == pytest.approx(expected, abs=1e-5)
    ccc = batch_concordance(outputs, targets["va"], torch.from_numpy(keep))
    assert ccc.shape == (2,)


def test_au_loss_is_weighted_binary_cross_entropy_on_annotated_rows():
    rng = np.random.default_rng(2)
    targets = _targets(rng)
    logits = torch.randn(3, 20, 12)
    loss = TaskLoss(("au",), ExpressionLoss())
    loss.au_pos_weight.copy_(torch.linspace(0.5, 4.0, 12))
    _, parts = loss(logits, targets)
    keep = targets["au"][..., 0] != -1
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[keep], targets["au"][keep], pos_weight=torch.linspace(0.5, 4.0, 12)
    )
    assert parts["au"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_the_total_weighs_each_track_and_a_track_absent_from_the_batch_adds_zero():
    rng = np.random.default_rng(3)
    targets = _targets(rng)
    targets["va"][:] = -5  # no VA label in this batch
    outputs = torch.randn(3, 20, 22).requires_grad_(True)
    loss = TaskLoss(TASK_WIDTHS, ExpressionLoss(), weights={"expr": 0.5, "au": 2.0})
    total, parts = loss(outputs, targets)
    assert parts["va"].item() == 0.0
    assert total.item() == pytest.approx(0.5 * parts["expr"].item() + 2.0 * parts["au"].item())
    total.backward()
    assert (outputs.grad[..., task_slices(TASK_WIDTHS)["va"]] == 0).all()


# --- it learns -----------------------------------------------------------------------------


def test_a_joint_head_learns_va_and_au_from_features():
    """Made-up features whose directions carry valence, arousal and four AUs: a few hundred
    steps of the paper's head on all three tracks beat a constant predictor by far."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    dim, n_train, n_val, t = 32, 48, 16, 24
    basis = torch.from_numpy(rng.normal(size=(6, dim)).astype(np.float32))

    def make(n):
        latent = torch.from_numpy(rng.uniform(-1, 1, (n, t, 6)).astype(np.float32))
        x = latent @ basis + 0.1 * torch.randn(n, t, dim)
        va = latent[..., :2] * 0.9
        au = torch.zeros(n, t, 12)
        au[..., :4] = (latent[..., 2:6] > 0.2).float()
        labels = (latent[..., 2] > 0).long()  # two expressions
        return x, {"labels": labels, "va": va, "au": au}

    (x, y), (vx, vy) = make(n_train), make(n_val)
    head = TemporalHead(
        "combine", feature_dim=dim, head_dim=16, ff_dim=64, tasks=TASK_WIDTHS, dropout=0.1
    )
    loss = TaskLoss(head.tasks, ExpressionLoss())
    optimiser = torch.optim.Adam(head.parameters(), lr=3e-3)
    for step in range(150):
        batch = torch.arange(step * 8, step * 8 + 8) % n_train
        total, _ = loss(head.train()(x[batch]), {k: v[batch] for k, v in y.items()})
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    with torch.no_grad():
        parts = split_outputs(head.eval()(vx), head.tasks)
    va_true, va_pred = vy["va"].reshape(-1, 2).numpy(), parts["va"].reshape(-1, 2).numpy()
    assert min(concordance(va_true[:, d], va_pred[:, d]) for d in (0, 1)) > 0.8
    au_true = vy["au"].reshape(-1, 12).numpy()[:, :4]
    au_pred = (parts["au"].reshape(-1, 12).numpy()[:, :4] > 0).astype(int)
    constant = binary_f1(au_true, np.ones_like(au_true)).mean()  # the best constant for F1
    assert binary_f1(au_true, au_pred).mean() > constant + 0.3


def test_validation_ccc_pools_every_batch_as_the_scorer_does():
    from abaw_expr.training.module import ConcordanceSums

    rng = np.random.default_rng(4)
    truth = rng.uniform(-1, 1, (300, 2))
    predicted = 0.6 * truth + rng.normal(0.1, 0.3, (300, 2))
    metric = ConcordanceSums()
    for part in np.array_split(np.arange(300), [7, 150]):  # batches of unequal sizes
        metric.update(torch.from_numpy(predicted[part]), torch.from_numpy(truth[part]))
    expected = [concordance(truth[:, d], predicted[:, d]) for d in (0, 1)]
    np.testing.assert_allclose(metric.compute().numpy(), expected, atol=1e-10)
