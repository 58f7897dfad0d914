"""The rules of a case and of the register, without storage: the ``Case`` aggregate,
the invariants across entries, the personal-data screen, the recording policy and the
administration register."""
