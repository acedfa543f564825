"""Backward-compatible name of `barcodemae.data`: new code imports `from barcodemae.data import ...`."""

from barcodemae.data import *  # noqa: F401,F403
