import math

import pytest
import torch

from cross_encoder.training.loss import grouped_softmax_loss


def test_hand_computed_group():
    # one group: positive 2.0, negatives 1.0 and 0.0
    logits = torch.tensor([[2.0], [1.0], [0.0]])
    expected = -math.log(math.exp(2) / (math.exp(2) + math.exp(1) + 1))
    assert grouped_softmax_loss(logits, 3).item() == pytest.approx(expected, abs=1e-6)


def test_mean_over_groups_and_partial_batch():
    # two groups of size 2 (a "partial" batch: B is inferred from the logits)
    logits = torch.tensor([0.0, 0.0, 3.0, 1.0])
    g1 = math.log(2)
    g2 = -math.log(math.exp(3) / (math.exp(3) + math.exp(1)))
    assert grouped_softmax_loss(logits, 2).item() == pytest.approx((g1 + g2) / 2, abs=1e-6)


def test_temperature_divides_scores():
    logits = torch.tensor([2.0, 0.0])
    t = 2.0
    expected = -math.log(math.exp(1) / (math.exp(1) + 1))
    assert grouped_softmax_loss(logits, 2, t).item() == pytest.approx(expected, abs=1e-6)


def test_gradient_pushes_positive_up():
    logits = torch.zeros(4, requires_grad=True)
    grouped_softmax_loss(logits, 4).backward()
    assert logits.grad[0] < 0 and (logits.grad[1:] > 0).all()
