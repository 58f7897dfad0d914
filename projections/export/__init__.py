"""Audit bundles: the export (:mod:`projections.export.bundle`), its HTML report, the
personal-data scan of what it wrote, and the in-package bundle verifier."""
