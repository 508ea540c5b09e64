"""OpenTelemetry spans and metrics for the compression stage (GenAI conventions v1.41.0).

Three layers, one job each:

- ``attributes``: every span name, attribute key, metric name, unit and bucket list, once;
- ``helpers``: pure functions from stage inputs and results to attribute dicts;
- ``StageTelemetry``: the stage observer that owns span lifecycles and records metrics.

Only the OpenTelemetry API is needed. Providers are passed in (or the global ones are used;
they are never set here). ``configure_span_file`` (SDK required) writes spans to a JSON Lines
file that ``ib-middleware report`` turns into an HTML dashboard.

Example:
    >>> from ib_middleware import CompressionStage, CXMIEstimator
    >>> from ib_middleware.testing import FakeScorer
    >>> telemetry = StageTelemetry()  # global providers: a no-op until the app sets an SDK
    >>> stage = CompressionStage([], estimator=CXMIEstimator(FakeScorer()), observers=[telemetry])
    >>> [result] = stage.run(["short"], "q")
    >>> result.decision
    'passthrough'
"""

from ib_middleware.telemetry import attributes
from ib_middleware.telemetry.observer import StageTelemetry
from ib_middleware.telemetry.setup import SpanFile, configure_span_file, metrics_path_for

__all__ = [
    "SpanFile",
    "StageTelemetry",
    "attributes",
    "configure_span_file",
    "metrics_path_for",
]
