"""Alembic migrations (env.py, versions/). Driven programmatically by switch.storage.cli."""
