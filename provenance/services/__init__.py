"""Use cases that tie the layers together; each owns its transactions."""
