from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_UNSPECIFIED: _ClassVar[Reason]
    NO_FACE: _ClassVar[Reason]
    MULTIPLE_FACES: _ClassVar[Reason]
    FACE_TOO_SMALL: _ClassVar[Reason]
    BLURRY: _ClassVar[Reason]
    BAD_POSE: _ClassVar[Reason]
    BAD_EXPOSURE: _ClassVar[Reason]
    LOW_DETECTION_SCORE: _ClassVar[Reason]
    LOW_QUALITY: _ClassVar[Reason]
    SPOOF: _ClassVar[Reason]
    DUPLICATE: _ClassVar[Reason]
    INVALID_IMAGE: _ClassVar[Reason]
    OCCLUDED: _ClassVar[Reason]
    EYES_CLOSED: _ClassVar[Reason]
REASON_UNSPECIFIED: Reason
NO_FACE: Reason
MULTIPLE_FACES: Reason
FACE_TOO_SMALL: Reason
BLURRY: Reason
BAD_POSE: Reason
BAD_EXPOSURE: Reason
LOW_DETECTION_SCORE: Reason
LOW_QUALITY: Reason
SPOOF: Reason
DUPLICATE: Reason
INVALID_IMAGE: Reason
OCCLUDED: Reason
EYES_CLOSED: Reason

class EmbeddingModel(_message.Message):
    __slots__ = ("name", "sha256", "dim")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    name: str
    sha256: str
    dim: int
    def __init__(self, name: _Optional[str] = ..., sha256: _Optional[str] = ..., dim: _Optional[int] = ...) -> None: ...

class Thresholds(_message.Message):
    __slots__ = ("identify", "verify", "duplicate")
    IDENTIFY_FIELD_NUMBER: _ClassVar[int]
    VERIFY_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    identify: float
    verify: float
    duplicate: float
    def __init__(self, identify: _Optional[float] = ..., verify: _Optional[float] = ..., duplicate: _Optional[float] = ...) -> None: ...

class GatePolicy(_message.Message):
    __slots__ = ("enrollment_overrides", "search_overrides", "enrollment_liveness", "search_liveness")
    class EnrollmentOverridesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class SearchOverridesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ENROLLMENT_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    SEARCH_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_LIVENESS_FIELD_NUMBER: _ClassVar[int]
    SEARCH_LIVENESS_FIELD_NUMBER: _ClassVar[int]
    enrollment_overrides: _containers.ScalarMap[str, float]
    search_overrides: _containers.ScalarMap[str, float]
    enrollment_liveness: bool
    search_liveness: bool
    def __init__(self, enrollment_overrides: _Optional[_Mapping[str, float]] = ..., search_overrides: _Optional[_Mapping[str, float]] = ..., enrollment_liveness: _Optional[bool] = ..., search_liveness: _Optional[bool] = ...) -> None: ...

class Gallery(_message.Message):
    __slots__ = ("name", "model", "thresholds", "gate_policy", "store_crops", "identity_count", "face_count", "stored_attributes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    GATE_POLICY_FIELD_NUMBER: _ClassVar[int]
    STORE_CROPS_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_COUNT_FIELD_NUMBER: _ClassVar[int]
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    STORED_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: EmbeddingModel
    thresholds: Thresholds
    gate_policy: GatePolicy
    store_crops: bool
    identity_count: int
    face_count: int
    stored_attributes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., model: _Optional[_Union[EmbeddingModel, _Mapping]] = ..., thresholds: _Optional[_Union[Thresholds, _Mapping]] = ..., gate_policy: _Optional[_Union[GatePolicy, _Mapping]] = ..., store_crops: _Optional[bool] = ..., identity_count: _Optional[int] = ..., face_count: _Optional[int] = ..., stored_attributes: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateGalleryRequest(_message.Message):
    __slots__ = ("name", "embedding_model", "thresholds", "gate_policy", "disable_crops", "stored_attributes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    GATE_POLICY_FIELD_NUMBER: _ClassVar[int]
    DISABLE_CROPS_FIELD_NUMBER: _ClassVar[int]
    STORED_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    embedding_model: str
    thresholds: Thresholds
    gate_policy: GatePolicy
    disable_crops: bool
    stored_attributes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., embedding_model: _Optional[str] = ..., thresholds: _Optional[_Union[Thresholds, _Mapping]] = ..., gate_policy: _Optional[_Union[GatePolicy, _Mapping]] = ..., disable_crops: _Optional[bool] = ..., stored_attributes: _Optional[_Iterable[str]] = ...) -> None: ...

class GetGalleryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListGalleriesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListGalleriesResponse(_message.Message):
    __slots__ = ("galleries",)
    GALLERIES_FIELD_NUMBER: _ClassVar[int]
    galleries: _containers.RepeatedCompositeFieldContainer[Gallery]
    def __init__(self, galleries: _Optional[_Iterable[_Union[Gallery, _Mapping]]] = ...) -> None: ...

class DeleteGalleryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteGalleryResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("reason", "value", "threshold", "message", "duplicate_of")
    REASON_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_OF_FIELD_NUMBER: _ClassVar[int]
    reason: Reason
    value: float
    threshold: float
    message: str
    duplicate_of: str
    def __init__(self, reason: _Optional[_Union[Reason, str]] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., message: _Optional[str] = ..., duplicate_of: _Optional[str] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("gallery", "external_id", "display_name", "metadata", "images", "allow_multiple_faces", "allow_duplicate", "image_names", "request_id")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    ALLOW_MULTIPLE_FACES_FIELD_NUMBER: _ClassVar[int]
    ALLOW_DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_NAMES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    external_id: str
    display_name: str
    metadata: _containers.ScalarMap[str, str]
    images: _containers.RepeatedScalarFieldContainer[bytes]
    allow_multiple_faces: bool
    allow_duplicate: bool
    image_names: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    def __init__(self, gallery: _Optional[str] = ..., external_id: _Optional[str] = ..., display_name: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., images: _Optional[_Iterable[bytes]] = ..., allow_multiple_faces: _Optional[bool] = ..., allow_duplicate: _Optional[bool] = ..., image_names: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ImageOutcome(_message.Message):
    __slots__ = ("index", "accepted", "face_id", "quality", "liveness", "rejection", "box", "image_name", "attributes")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    IMAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    index: int
    accepted: bool
    face_id: int
    quality: float
    liveness: float
    rejection: Rejection
    box: Box
    image_name: str
    attributes: FaceAttributes
    def __init__(self, index: _Optional[int] = ..., accepted: _Optional[bool] = ..., face_id: _Optional[int] = ..., quality: _Optional[float] = ..., liveness: _Optional[float] = ..., rejection: _Optional[_Union[Rejection, _Mapping]] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., image_name: _Optional[str] = ..., attributes: _Optional[_Union[FaceAttributes, _Mapping]] = ...) -> None: ...

class Identity(_message.Message):
    __slots__ = ("external_id", "display_name", "metadata", "face_ids")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    external_id: str
    display_name: str
    metadata: _containers.ScalarMap[str, str]
    face_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, external_id: _Optional[str] = ..., display_name: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., face_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("identity", "created", "outcomes", "replayed", "sequence")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    identity: Identity
    created: bool
    outcomes: _containers.RepeatedCompositeFieldContainer[ImageOutcome]
    replayed: bool
    sequence: int
    def __init__(self, identity: _Optional[_Union[Identity, _Mapping]] = ..., created: _Optional[bool] = ..., outcomes: _Optional[_Iterable[_Union[ImageOutcome, _Mapping]]] = ..., replayed: _Optional[bool] = ..., sequence: _Optional[int] = ...) -> None: ...

class EnrollItemResult(_message.Message):
    __slots__ = ("index", "external_id", "created", "outcomes", "error_code", "error_message", "replayed", "sequence")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    index: int
    external_id: str
    created: bool
    outcomes: _containers.RepeatedCompositeFieldContainer[ImageOutcome]
    error_code: int
    error_message: str
    replayed: bool
    sequence: int
    def __init__(self, index: _Optional[int] = ..., external_id: _Optional[str] = ..., created: _Optional[bool] = ..., outcomes: _Optional[_Iterable[_Union[ImageOutcome, _Mapping]]] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ..., replayed: _Optional[bool] = ..., sequence: _Optional[int] = ...) -> None: ...

class EnrollSummary(_message.Message):
    __slots__ = ("items", "identities_created", "images_accepted", "images_rejected", "items_failed", "rejections_by_reason")
    class RejectionsByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_CREATED_FIELD_NUMBER: _ClassVar[int]
    IMAGES_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    IMAGES_REJECTED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FAILED_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    items: int
    identities_created: int
    images_accepted: int
    images_rejected: int
    items_failed: int
    rejections_by_reason: _containers.ScalarMap[str, int]
    def __init__(self, items: _Optional[int] = ..., identities_created: _Optional[int] = ..., images_accepted: _Optional[int] = ..., images_rejected: _Optional[int] = ..., items_failed: _Optional[int] = ..., rejections_by_reason: _Optional[_Mapping[str, int]] = ...) -> None: ...

class EnrollStreamResponse(_message.Message):
    __slots__ = ("items", "summary")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[EnrollItemResult]
    summary: EnrollSummary
    def __init__(self, items: _Optional[_Iterable[_Union[EnrollItemResult, _Mapping]]] = ..., summary: _Optional[_Union[EnrollSummary, _Mapping]] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ("x1", "y1", "x2", "y2")
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    X2_FIELD_NUMBER: _ClassVar[int]
    Y2_FIELD_NUMBER: _ClassVar[int]
    x1: float
    y1: float
    x2: float
    y2: float
    def __init__(self, x1: _Optional[float] = ..., y1: _Optional[float] = ..., x2: _Optional[float] = ..., y2: _Optional[float] = ...) -> None: ...

class IdentifyRequest(_message.Message):
    __slots__ = ("gallery", "image", "top_k", "threshold", "target_fpir", "all_faces", "attributes", "min_sequence", "filters")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TARGET_FPIR_FIELD_NUMBER: _ClassVar[int]
    ALL_FACES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    image: bytes
    top_k: int
    threshold: float
    target_fpir: float
    all_faces: bool
    attributes: _containers.RepeatedScalarFieldContainer[str]
    min_sequence: int
    filters: _containers.RepeatedCompositeFieldContainer[AttributeFilter]
    def __init__(self, gallery: _Optional[str] = ..., image: _Optional[bytes] = ..., top_k: _Optional[int] = ..., threshold: _Optional[float] = ..., target_fpir: _Optional[float] = ..., all_faces: _Optional[bool] = ..., attributes: _Optional[_Iterable[str]] = ..., min_sequence: _Optional[int] = ..., filters: _Optional[_Iterable[_Union[AttributeFilter, _Mapping]]] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("external_id", "display_name", "score", "face_id", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    external_id: str
    display_name: str
    score: float
    face_id: int
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, external_id: _Optional[str] = ..., display_name: _Optional[str] = ..., score: _Optional[float] = ..., face_id: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ProbeFace(_message.Message):
    __slots__ = ("box", "detection_score", "candidates", "rejection", "attributes")
    BOX_FIELD_NUMBER: _ClassVar[int]
    DETECTION_SCORE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    box: Box
    detection_score: float
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    rejection: Rejection
    attributes: FaceAttributes
    def __init__(self, box: _Optional[_Union[Box, _Mapping]] = ..., detection_score: _Optional[float] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., rejection: _Optional[_Union[Rejection, _Mapping]] = ..., attributes: _Optional[_Union[FaceAttributes, _Mapping]] = ...) -> None: ...

class IdentifyResponse(_message.Message):
    __slots__ = ("faces", "threshold")
    FACES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    faces: _containers.RepeatedCompositeFieldContainer[ProbeFace]
    threshold: float
    def __init__(self, faces: _Optional[_Iterable[_Union[ProbeFace, _Mapping]]] = ..., threshold: _Optional[float] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("gallery", "image", "reference_image", "external_id", "threshold", "target_far", "min_sequence")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TARGET_FAR_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    image: bytes
    reference_image: bytes
    external_id: str
    threshold: float
    target_far: float
    min_sequence: int
    def __init__(self, gallery: _Optional[str] = ..., image: _Optional[bytes] = ..., reference_image: _Optional[bytes] = ..., external_id: _Optional[str] = ..., threshold: _Optional[float] = ..., target_far: _Optional[float] = ..., min_sequence: _Optional[int] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("score", "match", "threshold", "probe_box", "reference_box", "reference_face_id", "rejection")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PROBE_BOX_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_BOX_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FACE_ID_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    score: float
    match: bool
    threshold: float
    probe_box: Box
    reference_box: Box
    reference_face_id: int
    rejection: Rejection
    def __init__(self, score: _Optional[float] = ..., match: _Optional[bool] = ..., threshold: _Optional[float] = ..., probe_box: _Optional[_Union[Box, _Mapping]] = ..., reference_box: _Optional[_Union[Box, _Mapping]] = ..., reference_face_id: _Optional[int] = ..., rejection: _Optional[_Union[Rejection, _Mapping]] = ...) -> None: ...

class GetIdentityRequest(_message.Message):
    __slots__ = ("gallery", "external_id")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    external_id: str
    def __init__(self, gallery: _Optional[str] = ..., external_id: _Optional[str] = ...) -> None: ...

class ListIdentitiesRequest(_message.Message):
    __slots__ = ("gallery", "page_size", "page_token")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    page_size: int
    page_token: str
    def __init__(self, gallery: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListIdentitiesResponse(_message.Message):
    __slots__ = ("identities", "next_page_token")
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    identities: _containers.RepeatedCompositeFieldContainer[Identity]
    next_page_token: str
    def __init__(self, identities: _Optional[_Iterable[_Union[Identity, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateIdentityRequest(_message.Message):
    __slots__ = ("gallery", "external_id", "display_name", "metadata", "replace_metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REPLACE_METADATA_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    external_id: str
    display_name: str
    metadata: _containers.ScalarMap[str, str]
    replace_metadata: bool
    def __init__(self, gallery: _Optional[str] = ..., external_id: _Optional[str] = ..., display_name: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., replace_metadata: _Optional[bool] = ...) -> None: ...

class DeleteIdentityRequest(_message.Message):
    __slots__ = ("gallery", "external_id")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    external_id: str
    def __init__(self, gallery: _Optional[str] = ..., external_id: _Optional[str] = ...) -> None: ...

class DeleteIdentityResponse(_message.Message):
    __slots__ = ("faces_removed", "sequence")
    FACES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    faces_removed: int
    sequence: int
    def __init__(self, faces_removed: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class DeleteFaceRequest(_message.Message):
    __slots__ = ("gallery", "face_id")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    face_id: int
    def __init__(self, gallery: _Optional[str] = ..., face_id: _Optional[int] = ...) -> None: ...

class DeleteFaceResponse(_message.Message):
    __slots__ = ("sequence",)
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    def __init__(self, sequence: _Optional[int] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GalleryStats(_message.Message):
    __slots__ = ("name", "identities", "faces", "model", "index_model_sha256", "index_kind", "index_faces")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INDEX_MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    INDEX_KIND_FIELD_NUMBER: _ClassVar[int]
    INDEX_FACES_FIELD_NUMBER: _ClassVar[int]
    name: str
    identities: int
    faces: int
    model: EmbeddingModel
    index_model_sha256: str
    index_kind: str
    index_faces: int
    def __init__(self, name: _Optional[str] = ..., identities: _Optional[int] = ..., faces: _Optional[int] = ..., model: _Optional[_Union[EmbeddingModel, _Mapping]] = ..., index_model_sha256: _Optional[str] = ..., index_kind: _Optional[str] = ..., index_faces: _Optional[int] = ...) -> None: ...

class ReindexRequest(_message.Message):
    __slots__ = ("gallery", "recognizer", "index_kind", "batch_size")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    RECOGNIZER_FIELD_NUMBER: _ClassVar[int]
    INDEX_KIND_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    recognizer: str
    index_kind: str
    batch_size: int
    def __init__(self, gallery: _Optional[str] = ..., recognizer: _Optional[str] = ..., index_kind: _Optional[str] = ..., batch_size: _Optional[int] = ...) -> None: ...

class ReindexProgress(_message.Message):
    __slots__ = ("phase", "faces_done", "faces_total", "gallery")
    class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PHASE_UNSPECIFIED: _ClassVar[ReindexProgress.Phase]
        EMBEDDING: _ClassVar[ReindexProgress.Phase]
        BUILDING: _ClassVar[ReindexProgress.Phase]
        SWITCHED: _ClassVar[ReindexProgress.Phase]
    PHASE_UNSPECIFIED: ReindexProgress.Phase
    EMBEDDING: ReindexProgress.Phase
    BUILDING: ReindexProgress.Phase
    SWITCHED: ReindexProgress.Phase
    PHASE_FIELD_NUMBER: _ClassVar[int]
    FACES_DONE_FIELD_NUMBER: _ClassVar[int]
    FACES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    phase: ReindexProgress.Phase
    faces_done: int
    faces_total: int
    gallery: Gallery
    def __init__(self, phase: _Optional[_Union[ReindexProgress.Phase, str]] = ..., faces_done: _Optional[int] = ..., faces_total: _Optional[int] = ..., gallery: _Optional[_Union[Gallery, _Mapping]] = ...) -> None: ...

class Stats(_message.Message):
    __slots__ = ("galleries", "identities", "faces", "loaded_model")
    GALLERIES_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    LOADED_MODEL_FIELD_NUMBER: _ClassVar[int]
    galleries: _containers.RepeatedCompositeFieldContainer[GalleryStats]
    identities: int
    faces: int
    loaded_model: EmbeddingModel
    def __init__(self, galleries: _Optional[_Iterable[_Union[GalleryStats, _Mapping]]] = ..., identities: _Optional[int] = ..., faces: _Optional[int] = ..., loaded_model: _Optional[_Union[EmbeddingModel, _Mapping]] = ...) -> None: ...

class AnalyzeRequest(_message.Message):
    __slots__ = ("image", "attributes", "gallery")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    attributes: _containers.RepeatedScalarFieldContainer[str]
    gallery: str
    def __init__(self, image: _Optional[bytes] = ..., attributes: _Optional[_Iterable[str]] = ..., gallery: _Optional[str] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class Emotion(_message.Message):
    __slots__ = ("label", "confidence", "scores")
    class ScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    label: str
    confidence: float
    scores: _containers.ScalarMap[str, float]
    def __init__(self, label: _Optional[str] = ..., confidence: _Optional[float] = ..., scores: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Gaze(_message.Message):
    __slots__ = ("pitch", "yaw", "pitch_deg", "yaw_deg")
    PITCH_FIELD_NUMBER: _ClassVar[int]
    YAW_FIELD_NUMBER: _ClassVar[int]
    PITCH_DEG_FIELD_NUMBER: _ClassVar[int]
    YAW_DEG_FIELD_NUMBER: _ClassVar[int]
    pitch: float
    yaw: float
    pitch_deg: float
    yaw_deg: float
    def __init__(self, pitch: _Optional[float] = ..., yaw: _Optional[float] = ..., pitch_deg: _Optional[float] = ..., yaw_deg: _Optional[float] = ...) -> None: ...

class HeadPose(_message.Message):
    __slots__ = ("yaw", "pitch", "roll")
    YAW_FIELD_NUMBER: _ClassVar[int]
    PITCH_FIELD_NUMBER: _ClassVar[int]
    ROLL_FIELD_NUMBER: _ClassVar[int]
    yaw: float
    pitch: float
    roll: float
    def __init__(self, yaw: _Optional[float] = ..., pitch: _Optional[float] = ..., roll: _Optional[float] = ...) -> None: ...

class Occlusion(_message.Message):
    __slots__ = ("eyes", "nose", "mouth")
    EYES_FIELD_NUMBER: _ClassVar[int]
    NOSE_FIELD_NUMBER: _ClassVar[int]
    MOUTH_FIELD_NUMBER: _ClassVar[int]
    eyes: float
    nose: float
    mouth: float
    def __init__(self, eyes: _Optional[float] = ..., nose: _Optional[float] = ..., mouth: _Optional[float] = ...) -> None: ...

class FaceAttributes(_message.Message):
    __slots__ = ("age", "gender", "gender_confidence", "race", "race_confidence", "age_group", "age_group_confidence", "emotion", "landmarks_106", "gaze", "parsing_class_shares", "segmentation_face_fraction", "eyes_open", "eye_openness", "mouth_open", "mouth_openness", "head_pose", "occlusion", "glasses", "sunglasses", "hat", "mask")
    class ParsingClassSharesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    AGE_FIELD_NUMBER: _ClassVar[int]
    GENDER_FIELD_NUMBER: _ClassVar[int]
    GENDER_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    RACE_FIELD_NUMBER: _ClassVar[int]
    RACE_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    AGE_GROUP_FIELD_NUMBER: _ClassVar[int]
    AGE_GROUP_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    EMOTION_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_106_FIELD_NUMBER: _ClassVar[int]
    GAZE_FIELD_NUMBER: _ClassVar[int]
    PARSING_CLASS_SHARES_FIELD_NUMBER: _ClassVar[int]
    SEGMENTATION_FACE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    EYES_OPEN_FIELD_NUMBER: _ClassVar[int]
    EYE_OPENNESS_FIELD_NUMBER: _ClassVar[int]
    MOUTH_OPEN_FIELD_NUMBER: _ClassVar[int]
    MOUTH_OPENNESS_FIELD_NUMBER: _ClassVar[int]
    HEAD_POSE_FIELD_NUMBER: _ClassVar[int]
    OCCLUSION_FIELD_NUMBER: _ClassVar[int]
    GLASSES_FIELD_NUMBER: _ClassVar[int]
    SUNGLASSES_FIELD_NUMBER: _ClassVar[int]
    HAT_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    age: float
    gender: str
    gender_confidence: float
    race: str
    race_confidence: float
    age_group: str
    age_group_confidence: float
    emotion: Emotion
    landmarks_106: _containers.RepeatedCompositeFieldContainer[Point]
    gaze: Gaze
    parsing_class_shares: _containers.ScalarMap[str, float]
    segmentation_face_fraction: float
    eyes_open: bool
    eye_openness: float
    mouth_open: bool
    mouth_openness: float
    head_pose: HeadPose
    occlusion: Occlusion
    glasses: bool
    sunglasses: bool
    hat: bool
    mask: bool
    def __init__(self, age: _Optional[float] = ..., gender: _Optional[str] = ..., gender_confidence: _Optional[float] = ..., race: _Optional[str] = ..., race_confidence: _Optional[float] = ..., age_group: _Optional[str] = ..., age_group_confidence: _Optional[float] = ..., emotion: _Optional[_Union[Emotion, _Mapping]] = ..., landmarks_106: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., gaze: _Optional[_Union[Gaze, _Mapping]] = ..., parsing_class_shares: _Optional[_Mapping[str, float]] = ..., segmentation_face_fraction: _Optional[float] = ..., eyes_open: _Optional[bool] = ..., eye_openness: _Optional[float] = ..., mouth_open: _Optional[bool] = ..., mouth_openness: _Optional[float] = ..., head_pose: _Optional[_Union[HeadPose, _Mapping]] = ..., occlusion: _Optional[_Union[Occlusion, _Mapping]] = ..., glasses: _Optional[bool] = ..., sunglasses: _Optional[bool] = ..., hat: _Optional[bool] = ..., mask: _Optional[bool] = ...) -> None: ...

class AnalyzedFace(_message.Message):
    __slots__ = ("box", "detection_score", "landmarks", "quality", "liveness", "rejection", "attributes")
    class QualityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    BOX_FIELD_NUMBER: _ClassVar[int]
    DETECTION_SCORE_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    box: Box
    detection_score: float
    landmarks: _containers.RepeatedCompositeFieldContainer[Point]
    quality: _containers.ScalarMap[str, float]
    liveness: float
    rejection: Rejection
    attributes: FaceAttributes
    def __init__(self, box: _Optional[_Union[Box, _Mapping]] = ..., detection_score: _Optional[float] = ..., landmarks: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., quality: _Optional[_Mapping[str, float]] = ..., liveness: _Optional[float] = ..., rejection: _Optional[_Union[Rejection, _Mapping]] = ..., attributes: _Optional[_Union[FaceAttributes, _Mapping]] = ...) -> None: ...

class AnalyzeResponse(_message.Message):
    __slots__ = ("faces", "attributes")
    FACES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    faces: _containers.RepeatedCompositeFieldContainer[AnalyzedFace]
    attributes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, faces: _Optional[_Iterable[_Union[AnalyzedFace, _Mapping]]] = ..., attributes: _Optional[_Iterable[str]] = ...) -> None: ...

class EmbeddingVector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class SearchFacesRequest(_message.Message):
    __slots__ = ("gallery", "face_id", "embedding", "top_k", "threshold", "min_sequence", "filters")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    face_id: int
    embedding: EmbeddingVector
    top_k: int
    threshold: float
    min_sequence: int
    filters: _containers.RepeatedCompositeFieldContainer[AttributeFilter]
    def __init__(self, gallery: _Optional[str] = ..., face_id: _Optional[int] = ..., embedding: _Optional[_Union[EmbeddingVector, _Mapping]] = ..., top_k: _Optional[int] = ..., threshold: _Optional[float] = ..., min_sequence: _Optional[int] = ..., filters: _Optional[_Iterable[_Union[AttributeFilter, _Mapping]]] = ...) -> None: ...

class AttributeFilter(_message.Message):
    __slots__ = ("name", "equals", "min", "max")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EQUALS_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    name: str
    equals: str
    min: float
    max: float
    def __init__(self, name: _Optional[str] = ..., equals: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class FaceMatch(_message.Message):
    __slots__ = ("face_id", "external_id", "score")
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    face_id: int
    external_id: str
    score: float
    def __init__(self, face_id: _Optional[int] = ..., external_id: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class SearchFacesResponse(_message.Message):
    __slots__ = ("matches", "threshold")
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[FaceMatch]
    threshold: float
    def __init__(self, matches: _Optional[_Iterable[_Union[FaceMatch, _Mapping]]] = ..., threshold: _Optional[float] = ...) -> None: ...

class ClusterFacesRequest(_message.Message):
    __slots__ = ("gallery", "face_ids", "embeddings", "threshold", "neighbours")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    face_ids: _containers.RepeatedScalarFieldContainer[int]
    embeddings: _containers.RepeatedCompositeFieldContainer[EmbeddingVector]
    threshold: float
    neighbours: int
    def __init__(self, gallery: _Optional[str] = ..., face_ids: _Optional[_Iterable[int]] = ..., embeddings: _Optional[_Iterable[_Union[EmbeddingVector, _Mapping]]] = ..., threshold: _Optional[float] = ..., neighbours: _Optional[int] = ...) -> None: ...

class FaceCluster(_message.Message):
    __slots__ = ("face_ids", "indices")
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    INDICES_FIELD_NUMBER: _ClassVar[int]
    face_ids: _containers.RepeatedScalarFieldContainer[int]
    indices: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, face_ids: _Optional[_Iterable[int]] = ..., indices: _Optional[_Iterable[int]] = ...) -> None: ...

class ClusterFacesResponse(_message.Message):
    __slots__ = ("clusters", "threshold")
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    clusters: _containers.RepeatedCompositeFieldContainer[FaceCluster]
    threshold: float
    def __init__(self, clusters: _Optional[_Iterable[_Union[FaceCluster, _Mapping]]] = ..., threshold: _Optional[float] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("key_id", "name", "role", "galleries", "view_crops", "rate_limit", "created_at", "last_used_at", "expires_at", "revoked_at")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    GALLERIES_FIELD_NUMBER: _ClassVar[int]
    VIEW_CROPS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    name: str
    role: str
    galleries: _containers.RepeatedScalarFieldContainer[str]
    view_crops: bool
    rate_limit: float
    created_at: str
    last_used_at: str
    expires_at: str
    revoked_at: str
    def __init__(self, key_id: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[str] = ..., galleries: _Optional[_Iterable[str]] = ..., view_crops: _Optional[bool] = ..., rate_limit: _Optional[float] = ..., created_at: _Optional[str] = ..., last_used_at: _Optional[str] = ..., expires_at: _Optional[str] = ..., revoked_at: _Optional[str] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("name", "role", "galleries", "view_crops", "rate_limit", "expires_in_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    GALLERIES_FIELD_NUMBER: _ClassVar[int]
    VIEW_CROPS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    galleries: _containers.RepeatedScalarFieldContainer[str]
    view_crops: bool
    rate_limit: float
    expires_in_seconds: int
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., galleries: _Optional[_Iterable[str]] = ..., view_crops: _Optional[bool] = ..., rate_limit: _Optional[float] = ..., expires_in_seconds: _Optional[int] = ...) -> None: ...

class IssuedApiKey(_message.Message):
    __slots__ = ("key", "api_key")
    KEY_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    api_key: ApiKey
    def __init__(self, key: _Optional[str] = ..., api_key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("include_revoked",)
    INCLUDE_REVOKED_FIELD_NUMBER: _ClassVar[int]
    include_revoked: bool
    def __init__(self, include_revoked: _Optional[bool] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("api_keys",)
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, api_keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class RotateApiKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...
