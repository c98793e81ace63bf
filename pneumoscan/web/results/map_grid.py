"""The Grad-CAM map's raw grid as it is stored with a result: JSON rows (row 0 at the top) of
values in [0, 1] at the model's native grid, so the map survives a restart and travels with
backups like the rest of the row."""

from __future__ import annotations

import json

import numpy as np

from pneumoscan.web.models import Result


def encode_grid(cam: np.ndarray) -> str:
    """A 2-D map (`Estimate.cam`) as the JSON text of `Result.map_grid`; float32 values convert
    exactly, so the stored grid is the model's map itself."""
    grid = np.asarray(cam, dtype=np.float64)
    if grid.ndim != 2:
        raise ValueError(f"a map grid is 2-D, not of shape {grid.shape}")
    return json.dumps(grid.tolist())


def grid_of(row: Result) -> list[list[float]] | None:
    """A result's stored map as rows of values, or None for results made before maps were kept."""
    return None if row.map_grid is None else json.loads(row.map_grid)
