"""Training curves: one PNG of the logged metrics per step (SFT, GRPO, the vision warm-up, the
retriever). Its own module so every trainer can plot without importing the SFT/GRPO loop."""

from __future__ import annotations

import json
from pathlib import Path


def plot_curves(metrics_path: Path, out_png: Path) -> Path | None:
    """Reward, IoU and KL (or loss, and the binding loss when trained) per step, with a moving average."""
    rows = [json.loads(x) for x in metrics_path.read_text().splitlines() if x.strip()]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("reward", "reward/iou", "reward/cendist", "reward/format", "kl", "loss", "binding", "attend", "attend_span")
            if any(k in r for r in rows)]  # binding: only steps whose batch had a labelled sample
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), squeeze=False)
    for ax, k in zip(axes[0], keys):
        steps = [r["step"] for r in rows if k in r]
        ys = [r[k] for r in rows if k in r]
        ax.plot(steps, ys, lw=0.8, alpha=0.5)
        w = max(1, len(ys) // 10)
        if w > 1:
            ma = [sum(ys[max(0, i - w + 1): i + 1]) / len(ys[max(0, i - w + 1): i + 1]) for i in range(len(ys))]
            ax.plot(steps, ma, lw=1.6)
        ax.set_title(k)
        ax.set_xlabel("step")
    fig.tight_layout()
    from grounder.plot import save_png

    return save_png(fig, out_png, dpi=90)
