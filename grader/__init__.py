"""grader: an automated grader for Docker networking labs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("grader")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
