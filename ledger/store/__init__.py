"""Where entries live: store locations and the SQLite recorder
(:mod:`ledger.store.sqlite`), the PostgreSQL recorder and its database authority
(:mod:`ledger.store.postgres`), and the sealing of personal data (:mod:`ledger.store.sealing`).
The stores read the domain rules and nothing above them."""
