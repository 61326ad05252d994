"""abaw-expr: per-frame facial-expression classification on Aff-Wild2 (ABAW EXPR track)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("abaw-expr")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
