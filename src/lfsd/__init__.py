"""lfsd: a Git LFS server."""

__version__ = "0.1.0"
