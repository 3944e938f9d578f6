"""The store (``ENVASSAY_HOME``): its env prefixes (:mod:`.envs`), the build-once rule
(:mod:`.once`), the record of the images envassay built (:mod:`.images`) and what
`envassay envs` lists and prunes (:mod:`.inventory`). Every path under it is named by
:mod:`envassay.store_layout`."""

from envassay.store.envs import (
    MARKER,
    Ensured,
    EnvStore,
    Lease,
    StoreEntry,
    StoreError,
    StoreKey,
    path_label,
)
from envassay.store.once import build_once
from envassay.store_layout import CacheLayout, StoreLayout

__all__ = [
    "MARKER",
    "CacheLayout",
    "Ensured",
    "EnvStore",
    "Lease",
    "StoreEntry",
    "StoreError",
    "StoreKey",
    "StoreLayout",
    "build_once",
    "path_label",
]
