"""The ``caseledger`` commands, one module per group; each parses, calls the Python API and
renders, with the shared options and rendering of :mod:`cli.common`."""
