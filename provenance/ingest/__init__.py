"""Readers of images, folders, manifests and WebDataset tars; hashing; the worker pool."""
