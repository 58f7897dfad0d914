"""The write side of caseledger: the event catalogue, the case aggregate, its
invariants, hashing, and the stores."""
