"""Pure assessments of a folded case: the working-day calendar, the rule packs, the
statutory clocks and the nine QM2 quality questions."""
