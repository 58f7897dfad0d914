"""The cross-case index kept in the store (SQLite or PostgreSQL), one job per module, each
importing only the ones below it (the layers contract in ``pyproject.toml``):

``records``      answers over every case from the index: records, clocks, statuses
``case_index``   :class:`~projections.index.case_index.CaseIndex`: catch-up and reading
``overlay``      the tail folded in memory, for a user who may only read the index
``sqlite``, ``postgres``   the recorders: the index's tables in each store
``backend``      what the index needs from a store, and the empty index
``summary``      each case's rows built from its records (pure)
``rows``         the tables' columns and row types
``sealing``, ``clock_facts``   sealed columns; each case's clock facts (pure)
"""
