from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HistoryRequest(_message.Message):
    __slots__ = ("op", "ref", "path")
    OP_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    op: str
    ref: str
    path: str
    def __init__(self, op: _Optional[str] = ..., ref: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class HistoryChunk(_message.Message):
    __slots__ = ("record_json", "data")
    RECORD_JSON_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    record_json: str
    data: bytes
    def __init__(self, record_json: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class Output(_message.Message):
    __slots__ = ("type", "attrs")
    class AttrsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    type: str
    attrs: _containers.ScalarMap[str, str]
    def __init__(self, type: _Optional[str] = ..., attrs: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CacheSpec(_message.Message):
    __slots__ = ("attrs",)
    class AttrsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    attrs: _containers.ScalarMap[str, str]
    def __init__(self, attrs: _Optional[_Mapping[str, str]] = ...) -> None: ...

class LocalDir(_message.Message):
    __slots__ = ("name", "context_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    context_id: str
    def __init__(self, name: _Optional[str] = ..., context_id: _Optional[str] = ...) -> None: ...

class SolveRequest(_message.Message):
    __slots__ = ("ref", "session_id", "dockerfile", "dockerfile_name", "ignore_patterns", "has_context", "tags", "target", "platforms", "build_args", "build_contexts", "secret_ids", "ssh_ids", "no_cache", "no_cache_filter", "pull", "outputs", "labels", "network", "cache_to", "cache_from", "want_iid", "want_metadata", "local_dirs", "entitlements", "extra_hosts", "shm_size", "ulimits", "context_url", "dockerfile_in_context", "call", "metadata_warnings", "debug_shell", "debug_on", "debug_rows", "debug_cols", "dockerfile_sent")
    class BuildArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class BuildContextsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REF_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DOCKERFILE_FIELD_NUMBER: _ClassVar[int]
    DOCKERFILE_NAME_FIELD_NUMBER: _ClassVar[int]
    IGNORE_PATTERNS_FIELD_NUMBER: _ClassVar[int]
    HAS_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    BUILD_ARGS_FIELD_NUMBER: _ClassVar[int]
    BUILD_CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    SECRET_IDS_FIELD_NUMBER: _ClassVar[int]
    SSH_IDS_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FILTER_FIELD_NUMBER: _ClassVar[int]
    PULL_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    CACHE_TO_FIELD_NUMBER: _ClassVar[int]
    CACHE_FROM_FIELD_NUMBER: _ClassVar[int]
    WANT_IID_FIELD_NUMBER: _ClassVar[int]
    WANT_METADATA_FIELD_NUMBER: _ClassVar[int]
    LOCAL_DIRS_FIELD_NUMBER: _ClassVar[int]
    ENTITLEMENTS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_HOSTS_FIELD_NUMBER: _ClassVar[int]
    SHM_SIZE_FIELD_NUMBER: _ClassVar[int]
    ULIMITS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_URL_FIELD_NUMBER: _ClassVar[int]
    DOCKERFILE_IN_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    METADATA_WARNINGS_FIELD_NUMBER: _ClassVar[int]
    DEBUG_SHELL_FIELD_NUMBER: _ClassVar[int]
    DEBUG_ON_FIELD_NUMBER: _ClassVar[int]
    DEBUG_ROWS_FIELD_NUMBER: _ClassVar[int]
    DEBUG_COLS_FIELD_NUMBER: _ClassVar[int]
    DOCKERFILE_SENT_FIELD_NUMBER: _ClassVar[int]
    ref: str
    session_id: str
    dockerfile: bytes
    dockerfile_name: str
    ignore_patterns: _containers.RepeatedScalarFieldContainer[str]
    has_context: bool
    tags: _containers.RepeatedScalarFieldContainer[str]
    target: str
    platforms: _containers.RepeatedScalarFieldContainer[str]
    build_args: _containers.ScalarMap[str, str]
    build_contexts: _containers.ScalarMap[str, str]
    secret_ids: _containers.RepeatedScalarFieldContainer[str]
    ssh_ids: _containers.RepeatedScalarFieldContainer[str]
    no_cache: bool
    no_cache_filter: _containers.RepeatedScalarFieldContainer[str]
    pull: bool
    outputs: _containers.RepeatedCompositeFieldContainer[Output]
    labels: _containers.ScalarMap[str, str]
    network: str
    cache_to: _containers.RepeatedCompositeFieldContainer[CacheSpec]
    cache_from: _containers.RepeatedCompositeFieldContainer[CacheSpec]
    want_iid: bool
    want_metadata: bool
    local_dirs: _containers.RepeatedCompositeFieldContainer[LocalDir]
    entitlements: _containers.RepeatedScalarFieldContainer[str]
    extra_hosts: _containers.RepeatedScalarFieldContainer[str]
    shm_size: int
    ulimits: _containers.RepeatedScalarFieldContainer[str]
    context_url: str
    dockerfile_in_context: str
    call: str
    metadata_warnings: bool
    debug_shell: _containers.RepeatedScalarFieldContainer[str]
    debug_on: str
    debug_rows: int
    debug_cols: int
    dockerfile_sent: int
    def __init__(self, ref: _Optional[str] = ..., session_id: _Optional[str] = ..., dockerfile: _Optional[bytes] = ..., dockerfile_name: _Optional[str] = ..., ignore_patterns: _Optional[_Iterable[str]] = ..., has_context: _Optional[bool] = ..., tags: _Optional[_Iterable[str]] = ..., target: _Optional[str] = ..., platforms: _Optional[_Iterable[str]] = ..., build_args: _Optional[_Mapping[str, str]] = ..., build_contexts: _Optional[_Mapping[str, str]] = ..., secret_ids: _Optional[_Iterable[str]] = ..., ssh_ids: _Optional[_Iterable[str]] = ..., no_cache: _Optional[bool] = ..., no_cache_filter: _Optional[_Iterable[str]] = ..., pull: _Optional[bool] = ..., outputs: _Optional[_Iterable[_Union[Output, _Mapping]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., network: _Optional[str] = ..., cache_to: _Optional[_Iterable[_Union[CacheSpec, _Mapping]]] = ..., cache_from: _Optional[_Iterable[_Union[CacheSpec, _Mapping]]] = ..., want_iid: _Optional[bool] = ..., want_metadata: _Optional[bool] = ..., local_dirs: _Optional[_Iterable[_Union[LocalDir, _Mapping]]] = ..., entitlements: _Optional[_Iterable[str]] = ..., extra_hosts: _Optional[_Iterable[str]] = ..., shm_size: _Optional[int] = ..., ulimits: _Optional[_Iterable[str]] = ..., context_url: _Optional[str] = ..., dockerfile_in_context: _Optional[str] = ..., call: _Optional[str] = ..., metadata_warnings: _Optional[bool] = ..., debug_shell: _Optional[_Iterable[str]] = ..., debug_on: _Optional[str] = ..., debug_rows: _Optional[int] = ..., debug_cols: _Optional[int] = ..., dockerfile_sent: _Optional[int] = ...) -> None: ...

class SolveResponse(_message.Message):
    __slots__ = ("image_id", "metadata_json", "ran", "cached", "warnings")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    RAN_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    metadata_json: str
    ran: int
    cached: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, image_id: _Optional[str] = ..., metadata_json: _Optional[str] = ..., ran: _Optional[int] = ..., cached: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class VertexStarted(_message.Message):
    __slots__ = ("digest", "name", "started", "inputs")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    digest: str
    name: str
    started: float
    inputs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, digest: _Optional[str] = ..., name: _Optional[str] = ..., started: _Optional[float] = ..., inputs: _Optional[_Iterable[str]] = ...) -> None: ...

class VertexCacheMiss(_message.Message):
    __slots__ = ("digest", "name", "reason", "timestamp")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    digest: str
    name: str
    reason: str
    timestamp: float
    def __init__(self, digest: _Optional[str] = ..., name: _Optional[str] = ..., reason: _Optional[str] = ..., timestamp: _Optional[float] = ...) -> None: ...

class VertexCached(_message.Message):
    __slots__ = ("digest", "name", "timestamp", "inputs")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    digest: str
    name: str
    timestamp: float
    inputs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, digest: _Optional[str] = ..., name: _Optional[str] = ..., timestamp: _Optional[float] = ..., inputs: _Optional[_Iterable[str]] = ...) -> None: ...

class VertexCompleted(_message.Message):
    __slots__ = ("digest", "name", "started", "completed")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    digest: str
    name: str
    started: float
    completed: float
    def __init__(self, digest: _Optional[str] = ..., name: _Optional[str] = ..., started: _Optional[float] = ..., completed: _Optional[float] = ...) -> None: ...

class VertexFailed(_message.Message):
    __slots__ = ("digest", "name", "started", "completed", "error", "cancelled")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    digest: str
    name: str
    started: float
    completed: float
    error: str
    cancelled: bool
    def __init__(self, digest: _Optional[str] = ..., name: _Optional[str] = ..., started: _Optional[float] = ..., completed: _Optional[float] = ..., error: _Optional[str] = ..., cancelled: _Optional[bool] = ...) -> None: ...

class VertexLog(_message.Message):
    __slots__ = ("digest", "stream", "data", "timestamp")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    digest: str
    stream: int
    data: bytes
    timestamp: float
    def __init__(self, digest: _Optional[str] = ..., stream: _Optional[int] = ..., data: _Optional[bytes] = ..., timestamp: _Optional[float] = ...) -> None: ...

class VertexStatus(_message.Message):
    __slots__ = ("id", "digest", "name", "current", "total", "timestamp", "started", "completed")
    ID_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    id: str
    digest: str
    name: str
    current: int
    total: int
    timestamp: float
    started: float
    completed: float
    def __init__(self, id: _Optional[str] = ..., digest: _Optional[str] = ..., name: _Optional[str] = ..., current: _Optional[int] = ..., total: _Optional[int] = ..., timestamp: _Optional[float] = ..., started: _Optional[float] = ..., completed: _Optional[float] = ...) -> None: ...

class ProgressEvent(_message.Message):
    __slots__ = ("started", "cached", "completed", "failed", "log", "status", "cache_miss")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CACHE_MISS_FIELD_NUMBER: _ClassVar[int]
    started: VertexStarted
    cached: VertexCached
    completed: VertexCompleted
    failed: VertexFailed
    log: VertexLog
    status: VertexStatus
    cache_miss: VertexCacheMiss
    def __init__(self, started: _Optional[_Union[VertexStarted, _Mapping]] = ..., cached: _Optional[_Union[VertexCached, _Mapping]] = ..., completed: _Optional[_Union[VertexCompleted, _Mapping]] = ..., failed: _Optional[_Union[VertexFailed, _Mapping]] = ..., log: _Optional[_Union[VertexLog, _Mapping]] = ..., status: _Optional[_Union[VertexStatus, _Mapping]] = ..., cache_miss: _Optional[_Union[VertexCacheMiss, _Mapping]] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[ProgressEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[ProgressEvent, _Mapping]]] = ...) -> None: ...

class DiskUsageRequest(_message.Message):
    __slots__ = ("verify",)
    VERIFY_FIELD_NUMBER: _ClassVar[int]
    verify: bool
    def __init__(self, verify: _Optional[bool] = ...) -> None: ...

class UsageRecord(_message.Message):
    __slots__ = ("id", "size", "created_at", "last_used_at", "description", "usage_count", "in_use", "record_type")
    ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    USAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    IN_USE_FIELD_NUMBER: _ClassVar[int]
    RECORD_TYPE_FIELD_NUMBER: _ClassVar[int]
    id: str
    size: int
    created_at: float
    last_used_at: float
    description: str
    usage_count: int
    in_use: bool
    record_type: str
    def __init__(self, id: _Optional[str] = ..., size: _Optional[int] = ..., created_at: _Optional[float] = ..., last_used_at: _Optional[float] = ..., description: _Optional[str] = ..., usage_count: _Optional[int] = ..., in_use: _Optional[bool] = ..., record_type: _Optional[str] = ...) -> None: ...

class DiskUsageResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[UsageRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[UsageRecord, _Mapping]]] = ...) -> None: ...

class PruneRequest(_message.Message):
    __slots__ = ("all", "keep_duration", "keep_storage", "corrupt", "filters")
    ALL_FIELD_NUMBER: _ClassVar[int]
    KEEP_DURATION_FIELD_NUMBER: _ClassVar[int]
    KEEP_STORAGE_FIELD_NUMBER: _ClassVar[int]
    CORRUPT_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    all: bool
    keep_duration: float
    keep_storage: int
    corrupt: bool
    filters: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, all: _Optional[bool] = ..., keep_duration: _Optional[float] = ..., keep_storage: _Optional[int] = ..., corrupt: _Optional[bool] = ..., filters: _Optional[_Iterable[str]] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GCPolicy(_message.Message):
    __slots__ = ("keep_storage", "keep_duration")
    KEEP_STORAGE_FIELD_NUMBER: _ClassVar[int]
    KEEP_DURATION_FIELD_NUMBER: _ClassVar[int]
    keep_storage: int
    keep_duration: float
    def __init__(self, keep_storage: _Optional[int] = ..., keep_duration: _Optional[float] = ...) -> None: ...

class GCRule(_message.Message):
    __slots__ = ("all", "filters", "keep_duration", "reserved_space", "max_used_space", "min_free_space")
    ALL_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    KEEP_DURATION_FIELD_NUMBER: _ClassVar[int]
    RESERVED_SPACE_FIELD_NUMBER: _ClassVar[int]
    MAX_USED_SPACE_FIELD_NUMBER: _ClassVar[int]
    MIN_FREE_SPACE_FIELD_NUMBER: _ClassVar[int]
    all: bool
    filters: _containers.RepeatedScalarFieldContainer[str]
    keep_duration: float
    reserved_space: int
    max_used_space: int
    min_free_space: int
    def __init__(self, all: _Optional[bool] = ..., filters: _Optional[_Iterable[str]] = ..., keep_duration: _Optional[float] = ..., reserved_space: _Optional[int] = ..., max_used_space: _Optional[int] = ..., min_free_space: _Optional[int] = ...) -> None: ...

class WorkerRecord(_message.Message):
    __slots__ = ("id", "labels", "platforms", "emulated_platforms", "gc_policy", "gc_rules")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    EMULATED_PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    GC_POLICY_FIELD_NUMBER: _ClassVar[int]
    GC_RULES_FIELD_NUMBER: _ClassVar[int]
    id: str
    labels: _containers.ScalarMap[str, str]
    platforms: _containers.RepeatedScalarFieldContainer[str]
    emulated_platforms: _containers.RepeatedScalarFieldContainer[str]
    gc_policy: GCPolicy
    gc_rules: _containers.RepeatedCompositeFieldContainer[GCRule]
    def __init__(self, id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., platforms: _Optional[_Iterable[str]] = ..., emulated_platforms: _Optional[_Iterable[str]] = ..., gc_policy: _Optional[_Union[GCPolicy, _Mapping]] = ..., gc_rules: _Optional[_Iterable[_Union[GCRule, _Mapping]]] = ...) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerRecord]
    def __init__(self, workers: _Optional[_Iterable[_Union[WorkerRecord, _Mapping]]] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("package", "version", "revision")
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    package: str
    version: str
    revision: str
    def __init__(self, package: _Optional[str] = ..., version: _Optional[str] = ..., revision: _Optional[str] = ...) -> None: ...

class Stat(_message.Message):
    __slots__ = ("id", "path", "mode", "size", "mtime_ns", "linkname")
    ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    LINKNAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    path: str
    mode: int
    size: int
    mtime_ns: int
    linkname: str
    def __init__(self, id: _Optional[int] = ..., path: _Optional[str] = ..., mode: _Optional[int] = ..., size: _Optional[int] = ..., mtime_ns: _Optional[int] = ..., linkname: _Optional[str] = ...) -> None: ...

class SyncStart(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class SyncStats(_message.Message):
    __slots__ = ("name", "stats", "done", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    stats: _containers.RepeatedCompositeFieldContainer[Stat]
    done: bool
    error: str
    def __init__(self, name: _Optional[str] = ..., stats: _Optional[_Iterable[_Union[Stat, _Mapping]]] = ..., done: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class FileRequest(_message.Message):
    __slots__ = ("name", "ids", "hash_only")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    HASH_ONLY_FIELD_NUMBER: _ClassVar[int]
    name: str
    ids: _containers.RepeatedScalarFieldContainer[int]
    hash_only: bool
    def __init__(self, name: _Optional[str] = ..., ids: _Optional[_Iterable[int]] = ..., hash_only: _Optional[bool] = ...) -> None: ...

class FileHash(_message.Message):
    __slots__ = ("id", "sha256")
    ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    id: int
    sha256: bytes
    def __init__(self, id: _Optional[int] = ..., sha256: _Optional[bytes] = ...) -> None: ...

class FileHashes(_message.Message):
    __slots__ = ("name", "hashes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    name: str
    hashes: _containers.RepeatedCompositeFieldContainer[FileHash]
    def __init__(self, name: _Optional[str] = ..., hashes: _Optional[_Iterable[_Union[FileHash, _Mapping]]] = ...) -> None: ...

class FileData(_message.Message):
    __slots__ = ("name", "id", "data", "eof", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: int
    data: bytes
    eof: bool
    error: str
    def __init__(self, name: _Optional[str] = ..., id: _Optional[int] = ..., data: _Optional[bytes] = ..., eof: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class SecretRequest(_message.Message):
    __slots__ = ("req_id", "id")
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    req_id: int
    id: str
    def __init__(self, req_id: _Optional[int] = ..., id: _Optional[str] = ...) -> None: ...

class SecretValue(_message.Message):
    __slots__ = ("req_id", "found", "data")
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    req_id: int
    found: bool
    data: bytes
    def __init__(self, req_id: _Optional[int] = ..., found: _Optional[bool] = ..., data: _Optional[bytes] = ...) -> None: ...

class SSHOpen(_message.Message):
    __slots__ = ("conn_id", "ssh_id")
    CONN_ID_FIELD_NUMBER: _ClassVar[int]
    SSH_ID_FIELD_NUMBER: _ClassVar[int]
    conn_id: int
    ssh_id: str
    def __init__(self, conn_id: _Optional[int] = ..., ssh_id: _Optional[str] = ...) -> None: ...

class SSHData(_message.Message):
    __slots__ = ("conn_id", "data")
    CONN_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    conn_id: int
    data: bytes
    def __init__(self, conn_id: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class SSHClose(_message.Message):
    __slots__ = ("conn_id",)
    CONN_ID_FIELD_NUMBER: _ClassVar[int]
    conn_id: int
    def __init__(self, conn_id: _Optional[int] = ...) -> None: ...

class OutputBegin(_message.Message):
    __slots__ = ("index", "kind")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    index: int
    kind: str
    def __init__(self, index: _Optional[int] = ..., kind: _Optional[str] = ...) -> None: ...

class OutputData(_message.Message):
    __slots__ = ("index", "data")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    index: int
    data: bytes
    def __init__(self, index: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class OutputEnd(_message.Message):
    __slots__ = ("index",)
    INDEX_FIELD_NUMBER: _ClassVar[int]
    index: int
    def __init__(self, index: _Optional[int] = ...) -> None: ...

class OutputAck(_message.Message):
    __slots__ = ("index", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    error: str
    def __init__(self, index: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class SessionMessage(_message.Message):
    __slots__ = ("sync_start", "sync_stats", "file_request", "file_hashes", "file_data", "secret_request", "secret_value", "ssh_open", "ssh_data", "ssh_close", "output_begin", "output_data", "output_end", "output_ack")
    SYNC_START_FIELD_NUMBER: _ClassVar[int]
    SYNC_STATS_FIELD_NUMBER: _ClassVar[int]
    FILE_REQUEST_FIELD_NUMBER: _ClassVar[int]
    FILE_HASHES_FIELD_NUMBER: _ClassVar[int]
    FILE_DATA_FIELD_NUMBER: _ClassVar[int]
    SECRET_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SECRET_VALUE_FIELD_NUMBER: _ClassVar[int]
    SSH_OPEN_FIELD_NUMBER: _ClassVar[int]
    SSH_DATA_FIELD_NUMBER: _ClassVar[int]
    SSH_CLOSE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BEGIN_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_END_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ACK_FIELD_NUMBER: _ClassVar[int]
    sync_start: SyncStart
    sync_stats: SyncStats
    file_request: FileRequest
    file_hashes: FileHashes
    file_data: FileData
    secret_request: SecretRequest
    secret_value: SecretValue
    ssh_open: SSHOpen
    ssh_data: SSHData
    ssh_close: SSHClose
    output_begin: OutputBegin
    output_data: OutputData
    output_end: OutputEnd
    output_ack: OutputAck
    def __init__(self, sync_start: _Optional[_Union[SyncStart, _Mapping]] = ..., sync_stats: _Optional[_Union[SyncStats, _Mapping]] = ..., file_request: _Optional[_Union[FileRequest, _Mapping]] = ..., file_hashes: _Optional[_Union[FileHashes, _Mapping]] = ..., file_data: _Optional[_Union[FileData, _Mapping]] = ..., secret_request: _Optional[_Union[SecretRequest, _Mapping]] = ..., secret_value: _Optional[_Union[SecretValue, _Mapping]] = ..., ssh_open: _Optional[_Union[SSHOpen, _Mapping]] = ..., ssh_data: _Optional[_Union[SSHData, _Mapping]] = ..., ssh_close: _Optional[_Union[SSHClose, _Mapping]] = ..., output_begin: _Optional[_Union[OutputBegin, _Mapping]] = ..., output_data: _Optional[_Union[OutputData, _Mapping]] = ..., output_end: _Optional[_Union[OutputEnd, _Mapping]] = ..., output_ack: _Optional[_Union[OutputAck, _Mapping]] = ...) -> None: ...
