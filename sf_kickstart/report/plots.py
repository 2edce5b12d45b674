"""The report's PNG figures, one function per figure, each drawing what the analysis computed (no analysis here)."""

from __future__ import annotations

import os
from typing import Dict, Optional

from sf_kickstart.report.analysis import Analysis


def _save(fig, out_dir: str, name: str) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=110)
    plt.close(fig)
    return name


def learning_curves(a: Analysis, out_dir: str, colors) -> Optional[str]:
    """Mean curve and its 95 % bootstrap band per method, teachers' final scores dashed, ★ where a method reaches its
    teacher's."""
    if not (a.metric and a.curves):
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    teacher_lines = {}
    for m in a.methods:
        c = a.curves.get(m)
        if c is None or not len(c.steps):
            continue
        ax.plot(c.steps, c.mean, color=colors[m], label=f"{m} ({len(a.units[m])})")
        if len(a.units[m]) > 1:
            ax.fill_between(c.steps, c.lo, c.hi, color=colors[m], alpha=0.18, linewidth=0)
        if m in a.teachers and a.teachers[m][1] is not None:
            teacher_lines[a.teachers[m][0]] = a.teachers[m][1]
            f = a.surpass.get(m)
            if f is not None:
                ax.plot([f], [c.at(f)], marker="*", markersize=13, color=colors[m], markeredgecolor="black", zorder=5)
    for name, v in teacher_lines.items():
        ax.axhline(v, linestyle="--", color="gray", linewidth=1)
        ax.annotate(f"teacher {name} final", (0, v), textcoords="offset points", xytext=(4, 3), fontsize=8, color="gray")
    ax.set_xlabel("frames")
    ax.set_ylabel(a.metric)
    ax.set_title("Learning curves (mean over runs (n), band: 95% bootstrap CI; ★ reaches its teacher's final)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, out_dir, "learning_curves.png")


def lambda_over_training(a: Analysis, out_dir: str, colors) -> Optional[str]:
    """`kickstart/lambda` per method (mean over runs, band: 95 % bootstrap CI): the paper's Figure 2 bottom."""
    if not a.lambda_curves:
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    for m, (c, runs) in a.lambda_curves.items():
        ax.plot(c.steps, c.mean, color=colors[m], label=m)
        if runs > 1:
            ax.fill_between(c.steps, c.lo, c.hi, color=colors[m], alpha=0.15, linewidth=0)
    ax.set_xlabel("frames")
    ax.set_ylabel("λ")
    ax.set_title("Kickstarting weight λ over training (mean over runs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "lambda.png")


def lambda_per_task(a: Analysis, out_dir: str, colors) -> Optional[str]:
    """Per-task λ_i heat map over frames, one panel per method."""
    if not a.lambda_tasks:
        return None
    import matplotlib.pyplot as plt
    import numpy as np

    ms = list(a.lambda_tasks)
    height = 1.2 + 0.35 * max(len(t) for t in a.lambda_tasks.values()) * len(ms)
    fig, axes = plt.subplots(len(ms), 1, figsize=(9, height), squeeze=False)
    for ax, m in zip(axes[:, 0], ms):
        tasks = a.lambda_tasks[m]
        grid, img = a.lambda_task_grids[m]
        end = float(grid[-1])
        im = ax.imshow(img, aspect="auto", interpolation="nearest", extent=[0, end, len(tasks), 0], cmap="viridis")
        ax.set_yticks(np.arange(len(tasks)) + 0.5)
        ax.set_yticklabels(tasks, fontsize=7)
        ax.set_title(f"{m}: per-task λ_i", fontsize=9)
        fig.colorbar(im, ax=ax, label="λ_i")
    axes[-1, 0].set_xlabel("frames")
    return _save(fig, out_dir, "lambda_tasks.png")


def pbt_lineage(a: Analysis, out_dir: str, colors) -> Optional[str]:
    """λ of every member of each population, exploit events as arrows from the source's λ to the member's."""
    views = [(e.name, a.pbt_views[e.name]) for e in a.pbt if a.pbt_views[e.name].lambdas]
    if not views:
        return None
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(views), 1, figsize=(9, 3.8 * len(views)), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (name, view) in zip(axes[:, 0], views):
        for pid, s in sorted(view.lambdas.items()):
            ax.plot(s.steps, s.values, color=cmap(pid % 10), label=f"p{pid}", drawstyle="steps-post")
        for f, y0, y1, mem in view.arrows:
            ax.annotate("", xy=(f, y1), xytext=(f, y0), arrowprops=dict(arrowstyle="->", color=cmap(mem % 10), lw=1))
        ax.set_title(f"{name}: λ of each member (arrows: exploit, copied from → to)", fontsize=9)
        ax.set_ylabel("λ")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=4)
    axes[-1, 0].set_xlabel("frames")
    return _save(fig, out_dir, "pbt_lambda.png")


FIGURES = (
    ("Learning curves", learning_curves),
    ("λ over training", lambda_over_training),
    ("Per-task λ_i", lambda_per_task),
    ("PBT lineage of λ", pbt_lineage),
)


def make_plots(a: Analysis, out_dir: str) -> Dict[str, str]:
    """Every figure there is data for: {title: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {m: plt.get_cmap("tab10" if len(a.methods) <= 10 else "tab20")(i % 20) for i, m in enumerate(a.methods)}
    plots: Dict[str, str] = {}
    for title, figure in FIGURES:
        name = figure(a, out_dir, colors)
        if name is not None:
            plots[title] = name
    return plots
