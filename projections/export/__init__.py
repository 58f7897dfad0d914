"""Audit bundles: the export (:mod:`projections.export.bundle`, its steps in the
``export_*`` modules), its HTML report, the personal-data scan of what it wrote, and the
in-package bundle verifier (:mod:`projections.export.verify`, its steps in the ``verify_*``
modules)."""
