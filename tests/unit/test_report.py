"""Report pieces that need no run: image views of files that went missing."""
from __future__ import annotations

import os

import numpy as np

from clusterflow.insights import ImageSource, compute_insights
from clusterflow.report import ReportImages
from clusterflow.report.publish import report_images
from tests.planted import image_model, write_planted_images


def test_unreadable_images_show_their_path(tmp_path):
    table = write_planted_images(tmp_path, n=12)
    model, X = image_model(table)
    insights = compute_insights(model, table, X, np.arange(12), model_id="kmeans-k2", max_activation_maps=1)
    os.remove(table["photo"].iloc[insights.activation_maps[0].row])
    images = report_images(insights, ImageSource())
    assert images.large[insights.activation_maps[0].row] is None
    assert isinstance(images, ReportImages)
