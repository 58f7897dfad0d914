"""Signed checkpoints of a store (:mod:`ledger.checkpoints.checkpoint`) and the witnesses
that keep a copy of each (:mod:`ledger.checkpoints.witness`): they write to the register, so
they are write side, above the application."""
