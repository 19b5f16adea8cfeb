"""Catalog access: models, engine/session factory, migrations and queries. Only db/ builds SQL."""
