"""envassay: stop conda environment drift before merge."""

__version__ = "0.1.0"
