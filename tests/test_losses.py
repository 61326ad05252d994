"""ExpressionLoss against a hand computation, and its masking rules."""

from __future__ import annotations

import math

import pytest
import torch

from abaw_expr.errors import InputError
from abaw_expr.training.losses import ExpressionLoss

LOGITS = [
    [2.0, 0.5, -1.0, 0.0],
    [0.1, 0.2, 0.3, 0.4],
    [-3.0, 1.0, 2.0, 0.5],
]
LABELS = [0, 3, 1]


def _by_hand(logits, labels, gamma, alpha, kl_weight, smoothing) -> float:
    total = 0.0
    for row, y in zip(logits, labels, strict=True):
        c = len(row)
        norm = sum(math.exp(v) for v in row)
        p = [math.exp(v) / norm for v in row]
        focal = alpha * (1 - p[y]) ** gamma * -math.log(p[y])
        t = [(1 - smoothing) * (i == y) + smoothing / c for i in range(c)]
        kl = sum(ti * (math.log(ti) - math.log(pi)) for ti, pi in zip(t, p, strict=True) if ti > 0)
        total += focal + kl_weight * kl
    return total / len(labels)


@pytest.mark.parametrize(
    "settings",
    [
        dict(gamma=2.0, alpha=0.9, kl_weight=0.2, smoothing=0.1),
        dict(gamma=0.0, alpha=1.0, kl_weight=0.0, smoothing=0.0),  # plain cross-entropy
        dict(gamma=1.5, alpha=0.5, kl_weight=1.0, smoothing=0.0),
    ],
)
def test_matches_hand_computation(settings: dict) -> None:
    logits = torch.tensor([LOGITS], dtype=torch.float64)
    labels = torch.tensor([LABELS])
    mask = torch.ones(1, 3, dtype=torch.bool)
    loss = ExpressionLoss(**settings)(logits, labels, mask)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(_by_hand(LOGITS, LABELS, **settings), rel=1e-5)


def test_default_settings_number() -> None:
    # the first frame alone, defaults gamma=2, alpha=0.9, kl_weight=0.2, smoothing=0.1
    loss = ExpressionLoss()(torch.tensor([[LOGITS[0]]]), torch.tensor([[0]]), None)
    expected = _by_hand(LOGITS[:1], [0], gamma=2.0, alpha=0.9, kl_weight=0.2, smoothing=0.1)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(0.0571084, rel=1e-5)


def test_masked_and_unannotated_frames_do_not_count() -> None:
    loss_fn = ExpressionLoss()
    logits = torch.randn(2, 4, 8)
    labels = torch.tensor([[0, 3, -1, 7], [5, 1, 2, 2]])
    mask = torch.tensor([[True, True, True, True], [True, False, False, False]])
    base = loss_fn(logits, labels, mask)
    changed = logits.clone()
    changed[0, 2] = 50 * torch.randn(8)  # label -1
    changed[1, 1:] = float("nan")  # padding
    changed_loss = loss_fn(changed.requires_grad_(), labels, mask)
    torch.testing.assert_close(base, changed_loss)
    changed_loss.backward()
    assert torch.isfinite(changed.grad).all()
    assert changed.grad[1, 1:].abs().sum() == 0 and changed.grad[0, 2].abs().sum() == 0
    counted = torch.tensor([[True, True, False, True], [True, False, False, False]])
    torch.testing.assert_close(base, loss_fn(logits[counted][None], labels[counted][None], None))


def test_nothing_counted_gives_zero_with_grad() -> None:
    logits = torch.randn(2, 3, 8, requires_grad=True)
    labels = torch.full((2, 3), -1)
    loss = ExpressionLoss()(logits, labels, torch.ones(2, 3, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.grad_fn is not None
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    loss = ExpressionLoss()(logits, torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3).bool())
    assert loss.item() == 0.0 and loss.requires_grad


def test_bf16_logits() -> None:
    logits32 = torch.randn(2, 5, 8)
    logits = logits32.bfloat16().requires_grad_()
    labels = torch.randint(0, 8, (2, 5))
    loss = ExpressionLoss()(logits, labels, None)
    assert loss.dtype == torch.float32
    reference = ExpressionLoss()(logits.detach().float(), labels, None)
    torch.testing.assert_close(loss, reference)
    loss.backward()
    assert logits.grad.dtype == torch.bfloat16 and torch.isfinite(logits.grad.float()).all()


def test_bad_settings() -> None:
    with pytest.raises(InputError):
        ExpressionLoss(smoothing=1.0)
    with pytest.raises(InputError):
        ExpressionLoss(gamma=-1.0)
