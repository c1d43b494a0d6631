"""Understanding the clusters: Cluster Insights, Feature Impact, Feature Associations, image views."""
from .associations import Associations, feature_associations
from .build import ModelInsights, compute_insights, describe_clusters, insight_files
from .images import ActivationMap, ImageSource, image_embedding, occlusion_map
from .impact import feature_impact

__all__ = ["ActivationMap", "Associations", "ImageSource", "ModelInsights", "compute_insights",
           "describe_clusters", "feature_associations", "feature_impact", "image_embedding", "insight_files",
           "occlusion_map"]
