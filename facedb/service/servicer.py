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
from typing import Any

import grpc

from facedb import engine as eng
from facedb.service.auth import current_principal, gallery_denied
from facedb.service.errors import status_for, translated
from facedb.service.limits import ConcurrencyLimiter
from facedb.storage.records import IdentityInfo, ModelInfo
from facedb.v1 import facedb_pb2 as pb
from facedb.v1 import facedb_pb2_grpc as pb_grpc
from facedb.vision.gates import Rejection

log = logging.getLogger(__name__)


PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED


class FaceDBServicer(pb_grpc.FaceDBServicer):
    def __init__(self, engine: eng.Engine, limiter: ConcurrencyLimiter):
        self.engine = engine
        self.limiter = limiter

    # -------------------------------------------------------------- galleries

    @translated
    def CreateGallery(self, request: pb.CreateGalleryRequest, context: Any) -> pb.Gallery:
        gallery = self.engine.create_gallery(
            request.name,
            embedding_model=request.embedding_model,
            thresholds=_thresholds(request.thresholds),
            gates=_gate_options(request.gate_policy),
            store_crops=not request.disable_crops,
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
        removed = self.engine.delete_identity(request.gallery, request.external_id)
        return pb.DeleteIdentityResponse(faces_removed=removed)

    @translated
    def DeleteFace(self, request: pb.DeleteFaceRequest, context: Any) -> pb.DeleteFaceResponse:
        self.engine.delete_face(request.gallery, request.face_id)
        return pb.DeleteFaceResponse()

    @translated
    def GetStats(self, request: pb.GetStatsRequest, context: Any) -> pb.Stats:
        principal = current_principal()
        galleries = [g for g in self.engine.stats() if principal.can_access(g.name)]
        return pb.Stats(
            galleries=[
                pb.GalleryStats(
                    name=g.name, identities=g.identities, faces=g.faces, model=_model(g.model)
                )
                for g in galleries
            ],
            identities=sum(g.identities for g in galleries),
            faces=sum(g.faces for g in galleries),
            loaded_model=_model(self.engine.model),
        )


# ------------------------------------------------------------------ conversions


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
    )
