"""FaceDB servicer: protobuf in, engine call, protobuf out. No decisions are made here.

Authentication and gallery authorisation already happened in the interceptor; CPU-bound
calls take a slot from the limiter, with the caller's remaining deadline as the wait bound.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

import grpc

from facedb import engine as eng
from facedb.service.auth import current_principal, gallery_denied
from facedb.service.errors import status_for, translated
from facedb.service.keys import ManagedKeys
from facedb.service.limits import ConcurrencyLimiter
from facedb.service.reindex import reindex_stream
from facedb.storage.api_keys import ApiKeyRecord
from facedb.storage.records import IdentityInfo, ModelInfo
from facedb.v1 import facedb_pb2 as pb
from facedb.v1 import facedb_pb2_grpc as pb_grpc
from facedb.vision.gates import Rejection

log = logging.getLogger(__name__)


PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED


class FaceDBServicer(pb_grpc.FaceDBServicer):
    def __init__(self, engine: eng.Engine, limiter: ConcurrencyLimiter, keys: ManagedKeys):
        self.engine = engine
        self.limiter = limiter
        self.keys = keys

    # -------------------------------------------------------------- galleries

    @translated
    def CreateGallery(self, request: pb.CreateGalleryRequest, context: Any) -> pb.Gallery:
        gallery = self.engine.create_gallery(
            request.name,
            embedding_model=request.embedding_model,
            thresholds=_thresholds(request.thresholds),
            gates=_gate_options(request.gate_policy),
            store_crops=not request.disable_crops,
            stored_attributes=list(request.stored_attributes),
        )
        return _gallery(gallery)

    @translated
    def GetGallery(self, request: pb.GetGalleryRequest, context: Any) -> pb.Gallery:
        return _gallery(self.engine.get_gallery(request.name))

    @translated
    def ListGalleries(self, request: pb.ListGalleriesRequest, context: Any) -> Any:
        principal = current_principal()
        galleries = [g for g in self.engine.list_galleries() if principal.can_access(g.name)]
        return pb.ListGalleriesResponse(galleries=[_gallery(g) for g in galleries])

    @translated
    def DeleteGallery(self, request: pb.DeleteGalleryRequest, context: Any) -> Any:
        self.engine.delete_gallery(request.name)
        return pb.DeleteGalleryResponse()

    # -------------------------------------------------------------- enrollment

    @translated
    def Enroll(self, request: pb.EnrollRequest, context: Any) -> pb.EnrollResponse:
        with self.limiter.slot(context.time_remaining()):
            result = self.engine.enroll(_enroll_item(request), timeout=context.time_remaining())
        return pb.EnrollResponse(
            identity=_identity(result.identity) if result.identity else None,
            created=result.created,
            outcomes=[_outcome(o) for o in result.outcomes],
            replayed=result.replayed,
            sequence=result.sequence,
        )

    @translated
    def EnrollStream(
        self, requests: Iterator[pb.EnrollRequest], context: Any
    ) -> pb.EnrollStreamResponse:
        # Items are analysed on every worker at once (one stream must be able to use the
        # machine), with at most two per worker read ahead: a fast client then waits on
        # gRPC flow control instead of filling the server's memory with images.
        workers = self.limiter.slots
        read_ahead = threading.BoundedSemaphore(2 * workers)
        futures: list[Future[pb.EnrollItemResult]] = []
        principal = current_principal()  # the pool's threads do not inherit the context
        with ThreadPoolExecutor(workers, thread_name_prefix="facedb-enroll") as pool:
            for index, request in enumerate(requests):
                denied = gallery_denied(principal, request.gallery)
                if denied:
                    futures.append(_done(_item_error(index, request, PERMISSION_DENIED, denied)))
                    continue
                read_ahead.acquire()
                future = pool.submit(self._stream_item, index, request, context)
                future.add_done_callback(lambda _: read_ahead.release())
                futures.append(future)
        items = [f.result() for f in futures]
        return pb.EnrollStreamResponse(items=items, summary=_summary(items))

    def _stream_item(self, index: int, request: pb.EnrollRequest, context: Any) -> Any:
        """One item of a bulk enrollment; its failure is reported, not raised."""
        try:
            with self.limiter.slot(context.time_remaining()):
                result = self.engine.enroll(_enroll_item(request), timeout=context.time_remaining())
        except Exception as error:
            code = status_for(error)
            if code is None:
                raise
            return _item_error(index, request, code, str(error))
        return pb.EnrollItemResult(
            index=index,
            external_id=request.external_id,
            created=result.created,
            outcomes=[_outcome(o) for o in result.outcomes],
            replayed=result.replayed,
            sequence=result.sequence,
        )

    # ------------------------------------------------------------------ search

    @translated
    def Identify(self, request: pb.IdentifyRequest, context: Any) -> pb.IdentifyResponse:
        decision = request.WhichOneof("decision")
        with self.limiter.slot(context.time_remaining()):
            result = self.engine.identify(
                request.gallery,
                request.image,
                top_k=request.top_k,
                threshold=request.threshold if decision == "threshold" else None,
                target_fpir=request.target_fpir if decision == "target_fpir" else None,
                all_faces=request.all_faces,
                timeout=context.time_remaining(),
                attributes=list(request.attributes),
                min_sequence=request.min_sequence,
                filters=_filters(request.filters),
            )
        return pb.IdentifyResponse(
            faces=[_probe(p) for p in result.faces], threshold=result.threshold
        )

    @translated
    def Verify(self, request: pb.VerifyRequest, context: Any) -> pb.VerifyResponse:
        reference = request.WhichOneof("reference")
        decision = request.WhichOneof("decision")
        with self.limiter.slot(context.time_remaining()):
            result = self.engine.verify(
                request.image,
                reference_image=request.reference_image if reference == "reference_image" else None,
                gallery=request.gallery,
                external_id=request.external_id if reference == "external_id" else "",
                threshold=request.threshold if decision == "threshold" else None,
                target_far=request.target_far if decision == "target_far" else None,
                timeout=context.time_remaining(),
                min_sequence=request.min_sequence,
            )
        return pb.VerifyResponse(
            score=result.score,
            match=result.match,
            threshold=result.threshold,
            probe_box=_box(result.probe_box),
            reference_box=_box(result.reference_box),
            reference_face_id=result.reference_face_id or 0,
            rejection=_rejection(result.rejection),
        )

    # -------------------------------------------------------------- identities

    @translated
    def GetIdentity(self, request: pb.GetIdentityRequest, context: Any) -> pb.Identity:
        return _identity(self.engine.get_identity(request.gallery, request.external_id))

    @translated
    def ListIdentities(self, request: pb.ListIdentitiesRequest, context: Any) -> Any:
        items, token = self.engine.list_identities(
            request.gallery, request.page_size, request.page_token
        )
        return pb.ListIdentitiesResponse(
            identities=[_identity(i) for i in items], next_page_token=token
        )

    @translated
    def UpdateIdentity(self, request: pb.UpdateIdentityRequest, context: Any) -> pb.Identity:
        metadata = dict(request.metadata)
        identity = self.engine.update_identity(
            request.gallery,
            request.external_id,
            display_name=request.display_name if request.HasField("display_name") else None,
            metadata=metadata if metadata or request.replace_metadata else None,
            replace_metadata=request.replace_metadata,
        )
        return _identity(identity)

    @translated
    def DeleteIdentity(self, request: pb.DeleteIdentityRequest, context: Any) -> Any:
        erased = self.engine.erase_identity(request.gallery, request.external_id)
        return pb.DeleteIdentityResponse(
            faces_removed=erased.faces_removed, sequence=erased.sequence
        )

    @translated
    def DeleteFace(self, request: pb.DeleteFaceRequest, context: Any) -> pb.DeleteFaceResponse:
        deleted = self.engine.delete_face(request.gallery, request.face_id)
        return pb.DeleteFaceResponse(sequence=deleted.sequence)

    @translated
    def Reindex(self, request: pb.ReindexRequest, context: Any) -> Iterator[pb.ReindexProgress]:
        # Not a request slot: a reindex runs for minutes; its embedder runs on its own thread.
        return reindex_stream(self.engine, request, context, _gallery)

    @translated
    def GetStats(self, request: pb.GetStatsRequest, context: Any) -> pb.Stats:
        principal = current_principal()
        galleries = [g for g in self.engine.stats() if principal.can_access(g.name)]
        return pb.Stats(
            galleries=[
                pb.GalleryStats(
                    name=g.name,
                    identities=g.identities,
                    faces=g.faces,
                    model=_model(g.model),
                    index_model_sha256=g.index_model_sha256,
                    index_kind=g.index_kind,
                    index_faces=g.index_faces,
                )
                for g in galleries
            ],
            identities=sum(g.identities for g in galleries),
            faces=sum(g.faces for g in galleries),
            loaded_model=_model(self.engine.model),
        )

    # ---------------------------------------------------------------- analysis

    @translated
    def Analyze(self, request: pb.AnalyzeRequest, context: Any) -> pb.AnalyzeResponse:
        with self.limiter.slot(context.time_remaining()):
            result = self.engine.analyze(
                request.image,
                list(request.attributes),
                gallery=request.gallery,
                timeout=context.time_remaining(),
            )
        return pb.AnalyzeResponse(
            faces=[_analyzed_face(f) for f in result.faces], attributes=list(result.attributes)
        )

    @translated
    def SearchFaces(self, request: pb.SearchFacesRequest, context: Any) -> Any:
        query = request.WhichOneof("query")
        with self.limiter.slot(context.time_remaining()):
            result = self.engine.search_faces(
                request.gallery,
                face_id=request.face_id if query == "face_id" else None,
                embedding=list(request.embedding.values) if query == "embedding" else None,
                top_k=request.top_k,
                threshold=request.threshold if request.HasField("threshold") else None,
                min_sequence=request.min_sequence,
                timeout=context.time_remaining(),
                filters=_filters(request.filters),
            )
        return pb.SearchFacesResponse(
            matches=[
                pb.FaceMatch(face_id=m.face_id, external_id=m.external_id, score=m.score)
                for m in result.matches
            ],
            threshold=result.threshold,
        )

    @translated
    def ClusterFaces(self, request: pb.ClusterFacesRequest, context: Any) -> Any:
        with self.limiter.slot(context.time_remaining()):
            result = self.engine.cluster_faces(
                gallery=request.gallery,
                face_ids=list(request.face_ids),
                embeddings=[list(e.values) for e in request.embeddings],
                threshold=request.threshold if request.HasField("threshold") else None,
                neighbours=request.neighbours,
            )
        gallery = bool(request.gallery)
        clusters = [
            pb.FaceCluster(face_ids=members) if gallery else pb.FaceCluster(indices=members)
            for members in result.clusters
        ]
        return pb.ClusterFacesResponse(clusters=clusters, threshold=result.threshold)

    # ---------------------------------------------------------------- API keys

    @translated
    def CreateApiKey(self, request: pb.CreateApiKeyRequest, context: Any) -> pb.IssuedApiKey:
        issued = self.keys.create(
            name=request.name,
            role=request.role,
            galleries=list(request.galleries) or ["*"],
            view_crops=request.view_crops if request.HasField("view_crops") else None,
            rate_limit=request.rate_limit or None,
            expires_in=request.expires_in_seconds or None,
        )
        return pb.IssuedApiKey(key=issued.secret, api_key=api_key_message(issued.record))

    @translated
    def ListApiKeys(self, request: pb.ListApiKeysRequest, context: Any) -> Any:
        records = self.keys.list(request.include_revoked)
        return pb.ListApiKeysResponse(api_keys=[api_key_message(r) for r in records])

    @translated
    def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, context: Any) -> pb.ApiKey:
        return api_key_message(self.keys.revoke(request.key_id))

    @translated
    def RotateApiKey(self, request: pb.RotateApiKeyRequest, context: Any) -> pb.IssuedApiKey:
        issued = self.keys.rotate(request.key_id)
        return pb.IssuedApiKey(key=issued.secret, api_key=api_key_message(issued.record))


# ------------------------------------------------------------------ conversions


def _time(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def api_key_message(record: ApiKeyRecord) -> pb.ApiKey:
    return pb.ApiKey(
        key_id=record.key_id,
        name=record.name,
        role=record.role,
        galleries=list(record.galleries),
        view_crops=record.view_crops,
        rate_limit=record.rate_limit or 0.0,
        created_at=_time(record.created_at),
        last_used_at=_time(record.last_used_at),
        expires_at=_time(record.expires_at),
        revoked_at=_time(record.revoked_at),
    )


def _thresholds(message: pb.Thresholds) -> eng.Thresholds:
    # Zero on the wire means "unset" (proto3 scalars): the model default applies.
    return eng.Thresholds(
        identify=message.identify or None,
        verify=message.verify or None,
        duplicate=message.duplicate or None,
    )


def _gate_options(message: pb.GatePolicy) -> eng.GatePolicyOptions:
    return eng.GatePolicyOptions(
        enrollment=dict(message.enrollment_overrides),
        search=dict(message.search_overrides),
        enrollment_liveness=(
            message.enrollment_liveness if message.HasField("enrollment_liveness") else None
        ),
        search_liveness=message.search_liveness if message.HasField("search_liveness") else None,
    )


def _gate_policy(options: eng.GatePolicyOptions) -> pb.GatePolicy:
    message = pb.GatePolicy(
        enrollment_overrides=options.enrollment, search_overrides=options.search
    )
    if options.enrollment_liveness is not None:
        message.enrollment_liveness = options.enrollment_liveness
    if options.search_liveness is not None:
        message.search_liveness = options.search_liveness
    return message


def _model(model: ModelInfo) -> pb.EmbeddingModel:
    return pb.EmbeddingModel(name=model.name, sha256=model.sha256, dim=model.dim)


def _gallery(gallery: eng.Gallery) -> pb.Gallery:
    return pb.Gallery(
        name=gallery.name,
        model=_model(gallery.model),
        thresholds=pb.Thresholds(
            identify=gallery.thresholds.identify or 0.0,
            verify=gallery.thresholds.verify or 0.0,
            duplicate=gallery.thresholds.duplicate or 0.0,
        ),
        gate_policy=_gate_policy(gallery.gates),
        store_crops=gallery.store_crops,
        identity_count=gallery.identity_count,
        face_count=gallery.face_count,
        stored_attributes=list(gallery.stored_attributes),
    )


def _enroll_item(request: pb.EnrollRequest) -> eng.EnrollItem:
    return eng.EnrollItem(
        gallery=request.gallery,
        external_id=request.external_id,
        images=list(request.images),
        display_name=request.display_name or None,
        metadata=dict(request.metadata) or None,
        allow_multiple_faces=request.allow_multiple_faces,
        allow_duplicate=request.allow_duplicate,
        image_names=list(request.image_names),
        request_id=request.request_id,
    )


def _rejection(rejection: Rejection | None, duplicate_of: str | None = None) -> pb.Rejection | None:
    if rejection is None:
        return None
    return pb.Rejection(
        reason=pb.Reason.Value(str(rejection.reason)),
        value=rejection.value,
        threshold=rejection.threshold,
        message=rejection.message,
        duplicate_of=duplicate_of or "",
    )


def _outcome(outcome: eng.ImageOutcome) -> pb.ImageOutcome:
    message = pb.ImageOutcome(
        index=outcome.index,
        accepted=outcome.accepted,
        face_id=outcome.face_id or 0,
        quality=outcome.quality or 0.0,
        rejection=_rejection(outcome.rejection, outcome.duplicate_of),
        image_name=outcome.image_name,
        box=_box(outcome.box),
    )
    if outcome.liveness is not None:
        message.liveness = outcome.liveness
    if outcome.attributes:
        message.attributes.CopyFrom(_attributes(outcome.attributes))
    return message


def _item_error(
    index: int, request: pb.EnrollRequest, code: grpc.StatusCode, message: str
) -> pb.EnrollItemResult:
    return pb.EnrollItemResult(
        index=index,
        external_id=request.external_id,
        error_code=code.value[0],
        error_message=message,
    )


def _done(result: pb.EnrollItemResult) -> Future[pb.EnrollItemResult]:
    future: Future[pb.EnrollItemResult] = Future()
    future.set_result(result)
    return future


def _summary(items: Iterable[pb.EnrollItemResult]) -> pb.EnrollSummary:
    summary = pb.EnrollSummary()
    reasons: Counter[str] = Counter()
    for item in items:
        summary.items += 1
        summary.items_failed += item.error_code != 0
        summary.identities_created += item.created
        for outcome in item.outcomes:
            if outcome.accepted:
                summary.images_accepted += 1
            else:
                summary.images_rejected += 1
                reasons[pb.Reason.Name(outcome.rejection.reason)] += 1
    summary.rejections_by_reason.update(reasons)
    return summary


def _metadata_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _identity(identity: IdentityInfo) -> pb.Identity:
    return pb.Identity(
        external_id=identity.external_id,
        display_name=identity.display_name or "",
        metadata={k: _metadata_text(v) for k, v in (identity.metadata or {}).items()},
        face_ids=list(identity.face_ids),
    )


def _box(box: tuple[float, float, float, float] | None) -> pb.Box | None:
    if box is None:
        return None
    return pb.Box(x1=box[0], y1=box[1], x2=box[2], y2=box[3])


def _probe(probe: eng.ProbeResult) -> pb.ProbeFace:
    return pb.ProbeFace(
        box=_box(probe.box),
        detection_score=probe.detection_score,
        candidates=[
            pb.Candidate(
                external_id=c.external_id,
                display_name=c.display_name or "",
                score=c.score,
                face_id=c.face_id,
                metadata={k: _metadata_text(v) for k, v in c.metadata.items()},
            )
            for c in probe.candidates
        ],
        rejection=_rejection(probe.rejection),
        attributes=_attributes(probe.attributes) if probe.attributes else None,
    )


def _analyzed_face(face: Any) -> pb.AnalyzedFace:
    return pb.AnalyzedFace(
        box=_box(face.box),
        detection_score=face.detection_score,
        landmarks=[pb.Point(x=x, y=y) for x, y in face.landmarks],
        quality=face.quality,
        liveness=face.liveness,
        rejection=_rejection(face.rejection),
        attributes=_attributes(face.attributes),
    )


# Attribute names whose value maps onto one FaceAttributes field of the same name.
_SCALAR_ATTRIBUTES = (
    "age", "gender", "gender_confidence", "race", "race_confidence", "age_group",
    "age_group_confidence", "eyes_open", "eye_openness", "mouth_open", "mouth_openness",
    "glasses", "sunglasses", "hat", "mask",
)  # fmt: skip


def _attributes(values: dict[str, Any]) -> pb.FaceAttributes:
    message = pb.FaceAttributes()
    for name in _SCALAR_ATTRIBUTES:
        if values.get(name) is not None:
            setattr(message, name, values[name])
    emotion = values.get("emotion")
    if emotion:
        message.emotion.CopyFrom(
            pb.Emotion(
                label=emotion["label"], confidence=emotion["confidence"], scores=emotion["scores"]
            )
        )
    points = (values.get("landmarks_106") or {}).get("points", [])
    message.landmarks_106.extend(pb.Point(x=x, y=y) for x, y in points)
    if values.get("gaze"):
        message.gaze.CopyFrom(pb.Gaze(**values["gaze"]))
    if values.get("head_pose"):
        message.head_pose.CopyFrom(pb.HeadPose(**values["head_pose"]))
    if values.get("occlusion"):
        message.occlusion.CopyFrom(pb.Occlusion(**values["occlusion"]))
    if values.get("parsing"):
        message.parsing_class_shares.update(values["parsing"]["class_shares"])
    if values.get("segmentation"):
        message.segmentation_face_fraction = values["segmentation"]["face_fraction"]
    return message


def _filters(filters: Any) -> list[eng.AttributeFilter]:
    return [
        eng.AttributeFilter(
            f.name,
            f.equals,
            f.min if f.HasField("min") else None,
            f.max if f.HasField("max") else None,
        )
        for f in filters
    ]
