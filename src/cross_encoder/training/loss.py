"""Grouped softmax cross-entropy for cross-encoder training (listwise, "LCE").

Reference: Gao, Dai & Callan, "Rethink Training of BERT Rerankers in Multi-Stage Retrieval
Pipeline" (ECIR 2021), as in luyug/Reranker and RetroMAE's ``cross_encoder``: the scores
of one positive and G-1 negatives form a group, and the loss is the cross-entropy of a
softmax over the group with the positive (index 0) as the target. In sentence-transformers
(6.2) the same function is the cross-encoder ``ListNetLoss`` with identity activation and
labels whose softmax is one-hot on the positive (e.g. ``[0, -1e4, ...]``); its
``MultipleNegativesRankingLoss`` differs (in-batch negatives, sigmoid x 10 by default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def grouped_softmax_loss(
    logits: torch.Tensor, group_size: int, temperature: float | None = None
) -> torch.Tensor:
    """Mean over groups of ``-log softmax(scores / T)[0]``.

    Args:
        logits: the cross-encoder's scores, ``B * group_size`` entries (any trailing
            singleton dimension), group by group, each with its positive first. A partial
            last batch is fine: ``B`` is inferred.
        group_size: ``G``, passages per query (1 positive + ``G - 1`` negatives).
        temperature: ``T`` dividing the scores (None: 1, as the seed).

    Returns:
        A float32 scalar, the loss averaged over the ``B`` groups. It is ``log G`` for
        uninformative scores and 0 when the positive outscores every negative by far.
    """
    scores = logits.float().reshape(-1, group_size)
    if temperature is not None:
        scores = scores / temperature
    target = torch.zeros(scores.size(0), dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores, target)
