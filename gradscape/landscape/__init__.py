"""Loss landscapes: error surfaces around trained weights and their smoothness and convexity.

Layout: where to evaluate (:mod:`.parameters`, :mod:`.directions`, :mod:`.subspaces`, :mod:`.grid`),
what is evaluated (:mod:`.forward`, :mod:`.evaluate`, :mod:`.memory`, :mod:`.sharding`, the result
file :mod:`.surface`), curvature as operators (:mod:`.operators`, :mod:`.hessian`) plus algorithms
(:mod:`.eigen`, :mod:`.curvature`), measures (:mod:`.measures`), plots (:mod:`.plots`), and the one
job that does it all for checkpoints on a task (:mod:`.job`: :func:`run_landscape`).
"""

from gradscape.landscape import directions, grid
from gradscape.landscape.api import recurrent_forward, recurrent_landscape, recurrent_objective, split_batches
from gradscape.landscape.curvature import (
    Extremes,
    curvature_ratio_grid,
    curvature_ratio_map,
    hessian_directions,
    hessian_extremes,
    hessian_trace,
)
from gradscape.landscape.directions import Directions, random_directions
from gradscape.landscape.eigen import EigenPairs, TraceResult, hutchinson_trace, lanczos, power_iteration
from gradscape.landscape.evaluate import Metric, RunOptions, evaluate_grid, evaluate_surface
from gradscape.landscape.grid import Grid, parse_grid
from gradscape.landscape.hessian import HVPOperator, output_loss
from gradscape.landscape.job import run_landscape
from gradscape.landscape.jobspec import (
    CurvatureSpec,
    DataSpec,
    DirectionSpec,
    LandscapeJob,
    LandscapeResult,
    ModelEntry,
    ModelLandscape,
)
from gradscape.landscape.measures import curvature_maps, surface_measures
from gradscape.landscape.operators import MatrixOperator, Operator, as_linear_operator
from gradscape.landscape.parameters import parameter_point, perturbed_params, select_parameters
from gradscape.landscape.surface import Surface, load_surface

__all__ = [
    # the job: checkpoints on a task → files
    "run_landscape", "LandscapeJob", "ModelEntry", "DataSpec", "DirectionSpec", "CurvatureSpec",
    "LandscapeResult", "ModelLandscape",
    # where to evaluate (parameters, directions, grids)
    "directions", "grid", "Directions", "random_directions", "Grid", "parse_grid",
    "select_parameters", "parameter_point", "perturbed_params",
    # what is evaluated, and the result file
    "Metric", "RunOptions", "evaluate_grid", "evaluate_surface", "Surface", "load_surface",
    "recurrent_forward", "recurrent_landscape", "recurrent_objective", "split_batches",
    # curvature (operators + algorithms) and measures
    "Extremes", "curvature_ratio_grid", "curvature_ratio_map", "hessian_directions", "hessian_extremes",
    "hessian_trace", "EigenPairs", "TraceResult", "hutchinson_trace", "lanczos", "power_iteration",
    "HVPOperator", "MatrixOperator", "Operator", "as_linear_operator", "output_loss",
    "curvature_maps", "surface_measures",
]  # fmt: skip
