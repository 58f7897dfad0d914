"""Questions across the store: ``status``, ``timeline``, ``why`` and ``delays``, answered
from the index first and by folding where needed, and the check of the index against the
events."""
