"""Signed checkpoints of a store (:mod:`ledger.checkpoints.checkpoint`, with its signing
keys, its trees' leaves and the hints table in modules of their own) and the witnesses that
keep a copy of each (:mod:`ledger.checkpoints.witness`): they write to the register, so they
are write side, above the application."""
