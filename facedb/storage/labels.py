"""Labels in memory: what a search hit says about its face, with no SQL on the way.

Per loaded gallery, one `GalleryLabels`: face id -> identity id as two parallel numpy
arrays (sorted face ids, int64 owners: 16 bytes a face), the identity table apart (one
`IdentityLabel` per identity, however many faces it has), and the gallery's row as a
`GalleryInfo` (settings, model) with its counts taken from the maps.

They stay current by the change log the index follows (facedb.storage.live): every change
row names the identity it touched, and a catch-up re-reads those identities and the added
faces' owners in the same read as the added faces' vectors (`read_changes`), so labels and
index move through the same commits. A process's own writes apply their labels after the
commit, before the index (`apply`): a face is labelled before the index can return it and
unlabelled before the index forgets it, and a hit without a label is dropped, so a face
removed is never returned once this process has caught up with its removal.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from facedb.storage import repository as repo
from facedb.storage.records import GalleryInfo, Hit
from facedb.storage.tables import OP_ADDED, OP_REMOVED, Identity

GONE = -1  # owner of a removed face until the arrays are compacted
MIN_CAPACITY = 1024


@dataclass(frozen=True, slots=True)  # one per identity: no per-instance __dict__
class IdentityLabel:
    external_id: str
    display_name: str | None
    metadata: dict[str, Any]


@dataclass
class LabelChanges:
    """What a stretch of the change log did to labels, read in one consistent view."""

    watermark: int
    added_ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    added_owners: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    removed: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    identities: dict[int, IdentityLabel | None] = field(default_factory=dict)  # None: gone


def read_changes(
    session: Session,
    gallery_id: int,
    changes: repo.ChangeRows,
    since: int,
) -> LabelChanges:
    """Fold `changes` (after `since`) into label changes, reading the owners of the faces
    added and every touched identity in `session`."""
    final: dict[int, str] = {}
    touched: set[int] = set()
    for _, face_id, op, identity_id in changes:
        if face_id is not None and op in (OP_ADDED, OP_REMOVED):
            final[face_id] = op
        if identity_id is not None:
            touched.add(identity_id)
    added = [face_id for face_id, op in final.items() if op == OP_ADDED]
    ids, owners = repo.face_owners(session, gallery_id, added) if added else _empty_pair()
    touched.update(owners.tolist())
    rows = repo.identity_labels(session, gallery_id, touched) if touched else []
    found = {row[0]: _label(row) for row in rows}
    removed = [face_id for face_id, op in final.items() if op == OP_REMOVED]
    present = set(ids.tolist())
    removed += [face_id for face_id in added if face_id not in present]  # gone since
    return LabelChanges(
        watermark=changes[-1][0] if changes else since,
        added_ids=ids,
        added_owners=owners,
        removed=np.asarray(sorted(removed), dtype=np.int64),
        identities={identity_id: found.get(identity_id) for identity_id in touched},
    )


def tail_changes(rows: Sequence[repo.TailRow], since: int) -> LabelChanges:
    """Fold the follower's one-statement rows (`repo.changes_with_labels`, after `since`)
    into label changes, as `read_changes` would with its own reads: the added faces that
    still exist with their owners, the rest removed, every touched identity's label (None
    where it is gone)."""
    final: dict[int, str] = {}
    owners: dict[int, int] = {}
    identities: dict[int, IdentityLabel | None] = {}
    for row in rows:
        if row.face_id is not None and row.op in (OP_ADDED, OP_REMOVED):
            final[row.face_id] = row.op
            if row.owner is not None:
                owners[row.face_id] = row.owner
        if row.identity_id is not None:
            label = row.label
            identities[row.identity_id] = None if label is None else _label((0, *label))
    added = sorted(face_id for face_id, op in final.items() if op == OP_ADDED and face_id in owners)
    removed = sorted(face_id for face_id in final if face_id not in owners)
    return LabelChanges(
        watermark=rows[-1].seq if rows else since,
        added_ids=np.asarray(added, dtype=np.int64),
        added_owners=np.asarray([owners[face_id] for face_id in added], dtype=np.int64),
        removed=np.asarray(removed, dtype=np.int64),
        identities=identities,
    )


def load_labels(session: Session, info: GalleryInfo, watermark: int) -> GalleryLabels:
    """Every face's owner and every identity of the gallery, read in `session` (a snapshot
    whose latest change is `watermark`)."""
    ids, owners = repo.face_owners(session, info.id)
    identities = {row[0]: _label(row) for row in repo.identity_labels(session, info.id)}
    return GalleryLabels(info, watermark, ids, owners, identities)


class GalleryLabels:
    """One gallery's labels and settings in this process (thread-safe)."""

    def __init__(
        self,
        info: GalleryInfo,
        watermark: int,
        face_ids: np.ndarray,
        owners: np.ndarray,
        identities: dict[int, IdentityLabel],
    ) -> None:
        self._lock = threading.Lock()
        self._gallery = info
        self.watermark = watermark
        self._size = len(face_ids)
        capacity = max(MIN_CAPACITY, self._size)
        self._ids = np.empty(capacity, np.int64)
        self._owners = np.empty(capacity, np.int64)
        order = np.argsort(face_ids, kind="stable")
        self._ids[: self._size] = face_ids[order]
        self._owners[: self._size] = owners[order]
        self._removed = 0  # entries marked GONE, dropped at the next compaction
        self._identities = dict(identities)

    @property
    def uid(self) -> str:
        return self._gallery.uid

    def info(self) -> GalleryInfo:
        """The gallery as SQL last told this process, with its current counts."""
        with self._lock:
            faces, identities = self._size - self._removed, len(self._identities)
            return replace(self._gallery, identity_count=identities, face_count=faces)

    def set_gallery(self, info: GalleryInfo) -> None:
        """The gallery row changed (settings, model, index kind) or was read again."""
        self._gallery = info

    def apply(self, changes: LabelChanges) -> None:
        """Apply label changes (idempotent: a replay from an older watermark is harmless)."""
        with self._lock:
            for identity_id, label in changes.identities.items():
                if label is None:
                    self._identities.pop(identity_id, None)
                else:
                    self._identities[identity_id] = label
            self._drop(changes.removed)
            self._put(changes.added_ids, changes.added_owners)
            self.watermark = max(self.watermark, changes.watermark)

    def hits(self, scores: np.ndarray, ids: np.ndarray) -> list[list[Hit]]:
        """Index results as hits per query row; a face with no label (removed, or its
        identity gone) is dropped."""
        with self._lock:
            owners = self._owners_of(ids.ravel()).reshape(ids.shape).tolist()
            identities = self._identities
            results = []
            # Python ints and floats up front: numpy scalars cost more per element.
            for row_scores, row_ids, row_owners in zip(
                scores.tolist(), ids.tolist(), owners, strict=True
            ):
                hits = []
                for score, face_id, owner in zip(row_scores, row_ids, row_owners, strict=True):
                    label = identities.get(owner)
                    if label is not None:  # a copy of the metadata: the caller may change it
                        metadata, name = dict(label.metadata), label.display_name
                        hits.append(Hit(face_id, label.external_id, score, name, metadata))
                results.append(hits)
            return results

    def nbytes(self) -> int:
        """Bytes of the face map's arrays (the identity table is apart)."""
        return int(self._ids.nbytes + self._owners.nbytes)

    # ---- the face map ---------------------------------------------------------------------

    def _owners_of(self, face_ids: np.ndarray) -> np.ndarray:
        live = self._ids[: self._size]
        if not self._size:
            return np.full(len(face_ids), GONE, np.int64)
        at = np.minimum(np.searchsorted(live, face_ids), self._size - 1)
        found = (live[at] == face_ids) & (face_ids >= 0)
        return np.where(found, self._owners[at], GONE)

    def _drop(self, face_ids: np.ndarray) -> None:
        if not len(face_ids) or not self._size:
            return
        live = self._ids[: self._size]
        at = np.minimum(np.searchsorted(live, face_ids), self._size - 1)
        at = at[(live[at] == face_ids) & (self._owners[at] != GONE)]
        self._owners[at] = GONE
        self._removed += len(at)
        if self._removed > max(MIN_CAPACITY, self._size // 4):
            self._compact()

    def _put(self, face_ids: np.ndarray, owners: np.ndarray) -> None:
        if not len(face_ids):
            return
        order = np.argsort(face_ids, kind="stable")
        face_ids, owners = face_ids[order], owners[order]
        live = self._ids[: self._size]
        if self._size:
            at = np.minimum(np.searchsorted(live, face_ids), self._size - 1)
            known = live[at] == face_ids
            self._removed -= int(np.count_nonzero(self._owners[at[known]] == GONE))
            self._owners[at[known]] = owners[known]
            face_ids, owners = face_ids[~known], owners[~known]
        if not len(face_ids):
            return
        if self._size and face_ids[0] < live[-1]:  # rare: not newer than every face held
            merged = np.concatenate([live, face_ids])
            order = np.argsort(merged, kind="stable")
            both = np.concatenate([self._owners[: self._size], owners])
            self._reset(merged[order], both[order])
            return
        self._reserve(self._size + len(face_ids))
        end = self._size + len(face_ids)
        self._ids[self._size : end], self._owners[self._size : end] = face_ids, owners
        self._size = end

    def _compact(self) -> None:
        keep = self._owners[: self._size] != GONE
        self._reset(self._ids[: self._size][keep], self._owners[: self._size][keep])

    def _reset(self, face_ids: np.ndarray, owners: np.ndarray) -> None:
        self._size, self._removed = len(face_ids), int(np.count_nonzero(owners == GONE))
        capacity = max(MIN_CAPACITY, self._size + self._size // 4)
        self._ids, self._owners = np.empty(capacity, np.int64), np.empty(capacity, np.int64)
        self._ids[: self._size], self._owners[: self._size] = face_ids, owners

    def _reserve(self, size: int) -> None:
        if size <= len(self._ids):
            return
        capacity = max(size, len(self._ids) * 3 // 2)
        for name in ("_ids", "_owners"):
            grown = np.empty(capacity, np.int64)
            grown[: self._size] = getattr(self, name)[: self._size]
            setattr(self, name, grown)


def label_of(identity: Identity) -> IdentityLabel:
    """The label of an identity row as this transaction leaves it."""
    metadata = dict(identity.attributes or {})
    return IdentityLabel(identity.external_id, identity.display_name, metadata)


def _label(row: tuple[int, str, str | None, dict[str, Any] | None]) -> IdentityLabel:
    return IdentityLabel(row[1], row[2], dict(row[3] or {}))


def _empty_pair() -> tuple[np.ndarray, np.ndarray]:
    return np.empty(0, np.int64), np.empty(0, np.int64)
