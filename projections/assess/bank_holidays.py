"""The bank holidays the clocks count, from a table generated from the ``holidays`` package.

The package is the source (never a hand-typed list), but any use of its countries imports
all of them, about 250 modules: 80 to 100 ms of every cold ``status``, ``due`` or
``clocks`` (issue 18).  So ``python -m cli.reference`` writes its
answers for the years clocks meet (:data:`FIRST_YEAR` to :data:`LAST_YEAR`) into
:mod:`projections.assess.bank_holiday_table`, with the package's version, and the
calendar reads the table only while that same version is the one installed: after an
upgrade of the package (which may add a one-off holiday) or for a year outside the
table, the package itself answers, as before.  Its ``--check`` (run by CI) fails when
the table is not what the installed package gives.
"""

from __future__ import annotations

import os
import sys
from datetime import date
from functools import cache
from pathlib import Path

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "SUBDIVISIONS",
    "package_year",
    "shipped_year",
    "table_for",
    "table_source",
]

#: The ``holidays`` GB subdivisions of the calendar's nations (``calendar.NATIONS``).
SUBDIVISIONS = ("ENG", "SCT", "NIR")

#: The years the table holds: the oldest Serious Case Reviews to clocks decades ahead.
FIRST_YEAR = 1985
LAST_YEAR = 2075

TABLE_MODULE = Path(__file__).with_name("bank_holiday_table.py")


def installed_version() -> str | None:
    """The version of the ``holidays`` package that ``import holidays`` would load, read
    from its ``.dist-info`` folder beside it (``importlib.metadata`` costs 20 to 35 ms to
    import), or ``None`` when that cannot be told (then the package answers)."""
    loaded = sys.modules.get("holidays")
    if loaded is not None:
        return str(getattr(loaded, "__version__", "")) or None
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        if "holidays" not in names:
            continue
        infos = [n for n in names if n.startswith("holidays-") and n.endswith(".dist-info")]
        if len(infos) != 1:
            return None
        return infos[0].removeprefix("holidays-").removesuffix(".dist-info")
    return None


Table = dict[str, dict[int, tuple[tuple[int, int, str], ...]]]


def table_for(version: str | None) -> Table | None:
    """The generated table, if it was generated from this version of the package."""
    # lazy: the table (~1 ms to load) only once a year's holidays are asked for
    from projections.assess import bank_holiday_table

    if version is None or version != bank_holiday_table.HOLIDAYS_VERSION:
        return None
    return bank_holiday_table.TABLE


@cache
def _usable_table() -> Table | None:
    return table_for(installed_version())


def shipped_year(subdiv: str, year: int) -> tuple[tuple[date, str], ...] | None:
    """The bank holidays of a GB subdivision in a year, in date order, from the table; or
    ``None`` when the package must answer (another version installed, a year outside)."""
    table = _usable_table()
    if table is None or subdiv not in table or not FIRST_YEAR <= year <= LAST_YEAR:
        return None
    return tuple((date(year, month, day), name) for month, day, name in table[subdiv][year])


def package_year(subdiv: str, year: int) -> tuple[tuple[date, str], ...]:
    """The same answer from the package itself."""
    import holidays

    found = holidays.country_holidays("GB", subdiv=subdiv, years=year)
    return tuple((day, str(name)) for day, name in sorted(found.items()))


def table_source() -> str:
    """The text of :mod:`projections.assess.bank_holiday_table` from the installed package."""
    import holidays

    lines = [
        '"""Bank holidays by GB subdivision and year, generated from the ``holidays`` package by',
        "``python -m cli.reference`` (do not edit; its ``--check`` compares it with the",
        'installed package).  Read by :mod:`projections.assess.bank_holidays`."""',
        "",
        f"HOLIDAYS_VERSION = {holidays.__version__!r}",  # type: ignore[attr-defined]
        "",
        "TABLE: dict[str, dict[int, tuple[tuple[int, int, str], ...]]] = {",
    ]
    for subdiv in SUBDIVISIONS:
        lines.append(f"    {subdiv!r}: {{")
        for year in range(FIRST_YEAR, LAST_YEAR + 1):
            days = ", ".join(f"({d.month}, {d.day}, {n!r})" for d, n in package_year(subdiv, year))
            lines.append(f"        {year}: ({days}{',' if days else ''}),")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"
