"""Watching the champions: feature and prediction drift, realised performance, the retraining rules."""
