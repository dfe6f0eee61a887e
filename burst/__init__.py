"""burst: hybrid-cloud burst capacity orchestrator."""

__version__ = "0.1.0"
