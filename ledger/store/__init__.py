"""Where entries live: store locations (:mod:`ledger.store.locations`), the SQLite recorder
(:mod:`ledger.store.sqlite`), the PostgreSQL recorder and its database authority
(:mod:`ledger.store.postgres`), what the ledger needs of either
(:mod:`ledger.store.recorder`), the mapper that stores entries as canonical JSON
(:mod:`ledger.store.mapper`), and the sealing of personal data (:mod:`ledger.store.sealing`).
The stores read the domain rules and nothing above them."""
