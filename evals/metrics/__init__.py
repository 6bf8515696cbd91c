"""Evaluation metrics: pure functions, percentages, one definition shared by runner and reports.

- `grounding`: IoU, R1@IoU / mIoU (`grounding_metrics`), R@k (`recall_at_k`).
- `qvhighlights`: the official moment_detr MR/HL evaluation (`eval_submission`).
- `qa`: accuracy (overall / per category), NExT-GQA and ReXTime grounded-QA metrics.
"""

from evals.metrics.grounding import best_iou, grounding_metrics, iop, iou, recall_at_k
from evals.metrics.qa import (
    is_correct,
    nextgqa_metrics,
    normalize_choice,
    qa_accuracy,
    rextime_metrics,
)
from evals.metrics.qvhighlights import eval_submission as qvhighlights_eval

__all__ = [
    "best_iou",
    "grounding_metrics",
    "iop",
    "iou",
    "is_correct",
    "nextgqa_metrics",
    "normalize_choice",
    "qa_accuracy",
    "qvhighlights_eval",
    "recall_at_k",
    "rextime_metrics",
]
