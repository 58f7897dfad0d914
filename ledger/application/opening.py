"""Opening (or creating) the store: the ``eventsourcing`` application set up for the
ledger, its location, its own environment, mapper and snapshot store, and the check
that a store is opened only with the key it was created with (or none)."""

from __future__ import annotations

import base64
import binascii
import getpass
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from eventsourcing.application import Application
from eventsourcing.persistence import PersistenceError

from ledger.application.writes import Clock, utc_now
from ledger.domain.policy import refuse_client_policy
from ledger.errors import StoreUnavailable
from ledger.store.acting import acting_user
from ledger.store.locations import StoreLocation, check_sqlite_location, no_store, parse_store
from ledger.store.mapper import LedgerMapper, OrjsonTranscoder

if TYPE_CHECKING:  # a typing face only: nothing of it is needed at run time
    from ledger.store.recorder import AuthorityRecorder, LedgerRecorder

KEY_CHECK = b"caseledger key check v1"
KEY_FILE_ENV = "CASELEDGER_KEY_FILE"


def cipher_env(key_file: str | None) -> dict[str, str]:
    """The library's cipher settings for a key file (``CASELEDGER_KEY_FILE``)."""
    path = key_file or os.environ.get(KEY_FILE_ENV)
    if not path:
        return {}
    try:
        key = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreUnavailable(f"cannot read the key file {path}: {exc}") from None
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise StoreUnavailable(
            f"{path} is not a caseledger key (expected a base64 AES-256 key of 32 random bytes)",
            code="not-a-key-file",
            params={"path": path},
        )
    return {"CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher", "CIPHER_KEY": key}


class LedgerStore(Application[uuid.UUID]):
    """The ledger's application on one store (SQLite file or PostgreSQL database), as
    opened: the base of :class:`~ledger.application.CaseLedger`."""

    def __init__(
        self,
        location: StoreLocation | None = None,
        *,
        clock: Clock | None = None,
        env: dict[str, str] | None = None,
        key_file: str | None = None,
        create: bool = True,
    ) -> None:
        """Open the store; with ``create`` false (every query) a store that is not there
        yet is refused (exit 4) instead of created.  Whatever is at the location and is no
        caseledger store (a text file, another application's database) is refused
        either way, before the library would add its tables to it."""
        refuse_client_policy(dict(os.environ))
        self.location = location or parse_store(None)
        self.clock: Clock = clock or utc_now
        self._may_create = create
        full_env = {**self.location.env(), **cipher_env(key_file), **(env or {})}
        try:
            if self.location.kind == "postgres":
                # lazy: psycopg costs ~70 ms at start-up; SQLite stores never need it
                from ledger.store.postgres import creation_lock

                loc = self.location
                with creation_lock(
                    loc.host, loc.port, loc.dbname, loc.user, loc.password, loc.schema, create
                ) as present:
                    if not present and not create:
                        raise no_store(loc)
                    super().__init__(env=full_env)
                    self._check_encryption()
            else:
                check_sqlite_location(self.location, create=create)
                super().__init__(env=full_env)
                self._check_encryption()
        except (PersistenceError, OSError) as exc:
            raise StoreUnavailable(
                f"cannot open the store ({self.location.describe()}): {exc}"
            ) from None
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                raise StoreUnavailable(
                    f"cannot reach the store ({self.location.describe()}): {exc}"
                ) from None
            raise

    def construct_env(self, name: str, env: Any = None) -> Any:
        # Only the ledger's own settings (and the library's cipher settings) are read
        # from the process environment, so stray variables cannot redirect the store.
        from eventsourcing.utils import Environment

        base = dict(env or {})
        base.setdefault("IS_SNAPSHOTTING_ENABLED", "y")
        return Environment(name, base)

    def construct_factory(self, env: Any) -> Any:
        factory = super().construct_factory(env)
        if self.location.kind == "postgres":
            # lazy: psycopg costs ~70 ms at start-up; SQLite stores never need it
            from ledger.store.pgroles import install_role_switch

            # before any recorder takes a connection: every one acts as the acting user
            install_role_switch(factory.datastore)  # type: ignore[attr-defined]
            # the pool's one connection is made before the first statement waits for it
            # (else that wait makes the pool open a second, in parallel); opened here once,
            # since the library's own open with a wait cannot be repeated on an open pool
            factory.datastore.pool.open(wait=True, timeout=5.0)  # type: ignore[attr-defined]
        return factory

    def construct_snapshot_store(self) -> Any:
        if self.location.kind != "postgres":
            return super().construct_snapshot_store()
        # lazy: psycopg costs ~70 ms at start-up; SQLite stores never need it
        from ledger.store.postgres import ReadablePostgresSnapshotRecorder

        recorder = ReadablePostgresSnapshotRecorder(
            datastore=self.factory.datastore,  # type: ignore[attr-defined]
            events_table_name=f"{self.name.lower()}_snapshots",
        )
        recorder.create_table()
        return self.factory.event_store(mapper=self.mapper, recorder=recorder)

    def construct_mapper(self) -> LedgerMapper:
        return LedgerMapper(
            transcoder=OrjsonTranscoder(),
            cipher=self.factory.cipher(),
            compressor=self.factory.compressor(),
        )

    def _check_encryption(self) -> None:
        """A store is encrypted from creation or never; open it only with its key."""
        recorder = self.ledger_recorder
        cipher = self.ledger_mapper.cipher
        mode = recorder.get_meta("encryption")
        if mode is None and not self._may_create:
            return  # a store another process is creating this moment: a query writes nothing
        if mode is None:
            if cipher is not None and self.count_events() > 0:
                raise StoreUnavailable(
                    "this store was created without encryption; unset CASELEDGER_KEY_FILE"
                )
            recorder.put_meta_if_absent("encryption", b"aes-gcm" if cipher else b"none")
            if cipher is not None:
                recorder.put_meta_if_absent("key_check", cipher.encrypt(KEY_CHECK))
            mode = recorder.get_meta("encryption")
        if mode == b"none" and cipher is not None:
            raise StoreUnavailable(
                "this store is not encrypted; unset CASELEDGER_KEY_FILE to open it"
            )
        if mode == b"aes-gcm":
            if cipher is None:
                raise StoreUnavailable(
                    "this store is encrypted: set CASELEDGER_KEY_FILE to its key file"
                )
            try:
                ok = cipher.decrypt(recorder.get_meta("key_check") or b"") == KEY_CHECK
            except Exception:
                ok = False
            if not ok:
                raise StoreUnavailable("the key in CASELEDGER_KEY_FILE is not this store's key")

    @property
    def encrypted(self) -> bool:
        """Whether entries and personal data are encrypted at rest."""
        return self.ledger_mapper.cipher is not None

    @property
    def ledger_mapper(self) -> LedgerMapper:
        """The mapper, typed."""
        assert isinstance(self.mapper, LedgerMapper)
        return self.mapper

    @property
    def ledger_recorder(self) -> LedgerRecorder:
        """The recorder, typed as what the ledger needs of either store's."""
        return cast("LedgerRecorder", self.recorder)

    @property
    def authority_recorder(self) -> AuthorityRecorder:
        """The recorder of a PostgreSQL store, typed with what only it has (the database's
        provenance, authority and screen)."""
        assert self.location.kind == "postgres"
        return cast("AuthorityRecorder", self.recorder)

    def identity(self) -> str:
        """Who is using the store: the OS user (SQLite) or the database user (the session
        user, or the role it has set), or inside :func:`ledger.store.acting.acting_as`
        (a server's request) the user it acts as, which on PostgreSQL is the role every
        connection has set (``SET ROLE``), so the database sees the same name."""
        if self.location.kind == "postgres":
            datastore = self.authority_recorder.datastore
            with datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute("SELECT current_user AS u")
                return str(curs.fetchone()["u"])
        return acting_user() or getpass.getuser()

    def count_events(self) -> int:
        """How many entries the store holds."""
        return int(self.ledger_recorder.count_events())
