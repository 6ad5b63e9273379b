"""A line's records database: the runs' JSON records, uploaded store-and-forward (DESIGN 8).

``store``: the engine, Alembic migrations and an idempotent upload of one record; ``spool``: the
records waiting to go up, and ``sync`` / ``upload_after_run`` that send them.
"""
