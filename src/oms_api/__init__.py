"""oms-api: a headless order management service."""

__version__ = "0.1.0"
