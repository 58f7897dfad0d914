"""Benchmarks at national scale (issue 6): a synthetic ledger generator and a runner.

``python -m bench`` measures the issue's figures on SQLite and PostgreSQL, each as a ratio
against a raw baseline measured in the same run; ``docs/performance.md`` reports them.
"""
