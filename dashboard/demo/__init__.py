"""Shapes: a procedural dataset with ground truth, and the small CNNs the project trains on it."""
