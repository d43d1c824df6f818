"""The run folder: ``datasets/<run_id>/`` and everything in it, in one versioned format.

A run holds ``store.json`` (the store format version), ``results.csv`` (one row per sample,
written as it is measured, each with its status: current or superseded), ``cells.jsonl``
(one line per complete cell, appended after its rows), ``host.json`` (provenance) and
``writer.lock`` (there while the one process writing the run holds it). Older formats are
migrated once, on load, so readers see only the current one.

Modules, one job each (this package imports nothing itself; import the module you need):

- :mod:`.errors`     errors and atomic writes (a leaf: imports nothing from virtbench)
- :mod:`.schema`     the columns, rows, run ids and the format version
- :mod:`.provenance` the commit and the measuring code's fingerprint stamped on rows
- :mod:`.rows`       measurements -> rows (checked against the metric catalog)
- :mod:`.hostfile`   reading and writing ``host.json``
- :mod:`.pairing`    which cell record each row belongs to, by the row's own keys
- :mod:`.scan`       reading ``results.csv`` + ``cells.jsonl`` (cells, status, bad lines)
- :mod:`.lock`       the writer lock (``writer.lock`` exists while it is held)
- :mod:`.migrate`    older formats -> the current one, once
- :mod:`.writer`     :class:`~.writer.RunStore`: lock, append a cell, supersede, recover
- :mod:`.reader`     :func:`~.reader.load_runs`: rows as a DataFrame (current by default)
- :mod:`.repair`     rewrite a damaged run keeping every valid row, cells derived from them
"""
