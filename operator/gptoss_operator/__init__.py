"""gpt-oss-operator: run OpenAI's gpt-oss models on Kubernetes with vLLM.

The package lives under the source root ``operator/`` (which is not itself a package: the
standard library has a module named ``operator``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gptoss-operator")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
