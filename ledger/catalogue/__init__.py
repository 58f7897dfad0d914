"""The event catalogue: every entry type of ``shared/contract/events.md`` as a pydantic
model (:mod:`ledger.catalogue.models`), the lowest layer of the write side."""
