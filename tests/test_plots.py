"""Figures drawn from the model itself: the depth ladder matches helpers.finetune.ladder."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from helpers import finetune, models, plots

matplotlib.use("Agg")


def test_plot_ladder_draws_one_row_per_level_tuned_cells_from_the_top():
    model = models.build_model("resnet18", 2, image_size=32, seed=0)
    ax = plots.plot_ladder(model)
    grid = np.asarray(ax.images[0].get_array())
    rungs = finetune.ladder(model)
    assert grid.shape == (len(rungs), len(model.stage_names) - 1)
    assert grid.sum(axis=1).tolist() == [len(r.tuned) for r in rungs]
    assert grid[0, -1] == 1 and grid[0, :-1].sum() == 0   # level 0: only the new head
    plt.close("all")


def test_plot_loss_overlay_draws_every_curve():
    ax = plots.plot_loss_overlay({"by hand": [0.7, 0.6, 0.5], "engine": [0.7, 0.6, 0.5]})
    assert len(ax.get_lines()) == 2
    plt.close("all")
