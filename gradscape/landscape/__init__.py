"""Loss landscapes: error surfaces around trained weights and their smoothness and convexity."""

from gradscape.landscape import directions, grid
from gradscape.landscape.api import recurrent_landscape, recurrent_objective, split_batches
from gradscape.landscape.curvature import (
    Extremes,
    curvature_ratio_grid,
    curvature_ratio_map,
    hessian_directions,
    hessian_extremes,
    hessian_trace,
)
from gradscape.landscape.directions import Directions, random_directions
from gradscape.landscape.eigen import EigenResult, TraceResult, hutchinson_trace, lanczos, power_iteration
from gradscape.landscape.evaluate import Surface, evaluate_surface, load_surface
from gradscape.landscape.grid import Grid, parse_grid
from gradscape.landscape.hessian import HVPOperator, MatrixOperator, Operator, output_loss
from gradscape.landscape.measures import curvature_maps, surface_measures

__all__ = [
    # where and what to evaluate (directions, grids, evaluation, API)
    "directions", "grid", "Directions", "random_directions", "Grid", "parse_grid",
    "Surface", "evaluate_surface", "load_surface",
    "recurrent_landscape", "recurrent_objective", "split_batches",
    # curvature and measures
    "Extremes", "curvature_ratio_grid", "curvature_ratio_map", "hessian_directions", "hessian_extremes",
    "hessian_trace", "EigenResult", "TraceResult", "hutchinson_trace", "lanczos", "power_iteration",
    "HVPOperator", "MatrixOperator", "Operator", "output_loss", "curvature_maps", "surface_measures",
]  # fmt: skip
