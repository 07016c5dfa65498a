"""tickerlake: an open, local-first stock-market lakehouse."""

__version__ = "0.1.0"
__all__ = ["__version__"]
