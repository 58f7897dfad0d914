"""Pure folds of one case's entries: its view as of a time and on a date, the decision in
force and why, one line in words per entry, and the reading of ``--as-of`` / ``--on``."""
