"""ib-middleware: an information-bottleneck compressor stage for agent frameworks."""

__version__ = "0.1.0"

__all__ = ["__version__"]
