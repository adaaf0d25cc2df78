"""`python -m kvmspec` runs the command line."""

from .cli import entry

entry()
