"""``python -m gwcheck``: the same command line as the ``gwcheck`` script."""

from .cli import run

run()
