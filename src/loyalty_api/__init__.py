"""loyalty-api: a headless membership and loyalty service."""

__version__ = "0.1.0"
