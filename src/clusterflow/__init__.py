"""clusterflow: multimodal clustering — featurize, fan out over algorithm x k, rank by silhouette."""
from .clustering import Clustering
from .model import ClusterModel, load_model

__all__ = ["ClusterModel", "Clustering", "load_model"]
__version__ = "0.1.0"
