"""How entries are stored: the canonical JSON of each complete record (hash included),
then the library's compressor and cipher when configured; snapshots of cases beside them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from ledger.domain.case import Case, CaseSnapshot
from ledger.integrity.canonical import canonical_json


class OrjsonTranscoder(Transcoder):
    """Encodes stored state as canonical JSON through orjson."""

    def encode(self, obj: Any) -> bytes:
        # orjson returns its bytes in a buffer of at least 4 KiB whatever their length;
        # a command holds every new entry's state until it is stored, so keep an
        # exact-size copy (a 100,000-line record peaked at 1 GiB without it).
        return bytes(memoryview(canonical_json(obj)))

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


SNAPSHOT_TOPIC = get_topic(CaseSnapshot)


class LedgerMapper(Mapper[UUID]):
    """Stores each entry as the canonical JSON of its complete record (hash included).

    The stored topic is the catalogue's event type, so the store itself can be filtered
    by type; snapshots keep the library's topic.  The library's cipher and compressor
    apply as usual when configured.
    """

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if isinstance(domain_event, CaseSnapshot):
            state = dict(domain_event.state)
            for key in ("_created_on", "_modified_on"):
                state[key] = state[key].isoformat()
            payload = {
                "timestamp": domain_event.timestamp.isoformat(),
                "topic": domain_event.topic,
                "state": state,
            }
            topic = SNAPSHOT_TOPIC
        else:
            payload = domain_event.entry
            topic = payload["type"]
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic,
            state=self.encode_state(payload),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        data = self.decode_state(stored_event.state)
        if stored_event.topic == SNAPSHOT_TOPIC:
            state = data["state"]
            for key in ("_created_on", "_modified_on"):
                state[key] = datetime.fromisoformat(state[key])
            return CaseSnapshot(
                originator_id=UUID(str(stored_event.originator_id)),
                originator_version=stored_event.originator_version,
                timestamp=datetime.fromisoformat(data["timestamp"]),
                topic=data["topic"],
                state=state,
            )
        timestamp = datetime.fromisoformat(data["recorded_at"].replace("Z", "+00:00"))
        if stored_event.topic == "CaseReferred":
            return Case.Referred(  # type: ignore[call-arg]
                originator_id=UUID(str(stored_event.originator_id)),
                originator_version=stored_event.originator_version,
                timestamp=timestamp,
                originator_topic=get_topic(Case),
                entry=data,
            )
        return Case.Recorded(  # type: ignore[call-arg]
            originator_id=UUID(str(stored_event.originator_id)),
            originator_version=stored_event.originator_version,
            timestamp=timestamp,
            entry=data,
        )

    def encode_state(self, payload: Any) -> bytes:
        """Canonical JSON, then compressed and encrypted when configured."""
        return self.seal_state(self.transcoder.encode(payload))

    def seal_state(self, state: bytes) -> bytes:
        """Canonical JSON already made (:func:`~ledger.integrity.canonical.sealed_record`)
        as stored: compressed and encrypted when configured, else as it is."""
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return state

    def decode_state(self, state: bytes) -> Any:
        """The inverse of :meth:`encode_state`."""
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        return self.transcoder.decode(state)
