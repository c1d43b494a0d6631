"""clusterflow: multimodal clustering — featurize, fan out over algorithm x k, rank by silhouette."""
from importlib import import_module

# Public names and the module each lives in, imported on first use: `import clusterflow`
# (and the command line's `--help`) stays fast, and a table pays only for what it needs.
_EXPORTS = {"ClusterModel": "model", "Clustering": "clustering", "load_model": "model"}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
