"""WebDataset shard writing, manifests, lineage and revocation filtering."""
