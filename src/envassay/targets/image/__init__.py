"""Container images of an env: options, plan (content hash), build context, build-or-reuse,
facts. One module per concern; this package names the API the rest of envassay uses.

An image is built from ``assets/Dockerfile.buildkit`` where BuildKit builds it and the
builder's tool can run in the runtime image (one stage: the env is created right in the
runtime image, the builder's conda mounted for that step), else from ``assets/Dockerfile``
(multi-stage: a miniconda-family builder creates the env at a fixed prefix from the lock
or the spec; a runtime stage copies the prefix). Both run as a non-root user. Its tag is
``envassay/NAME:HASH``, the hash covering everything that decides what the image
contains: the spec's meaning, the lock, local channels' repodata, the Dockerfiles and
the build arguments. An existing tag is never rebuilt. Every Docker call goes through
:mod:`envassay.docker`.

- :mod:`.options`  how to build (images, creator, prefix, user)
- :mod:`.plan`     the inputs and the content hash
- :mod:`.context`  the build context and the build arguments
- :mod:`.build`    build or reuse; the store's image records
- :mod:`.facts`    the facts the image checks judge (kept by image id)
- labels and the facts' model: :mod:`envassay.imagedata` (pure data, read by the checks)
"""

from __future__ import annotations

from envassay.imagedata import (
    LABEL_LOCK_HASH,
    LABEL_PREFIX,
    LABEL_SPEC_HASH,
    LABEL_SPEC_NAME,
    OCI_LABELS,
    ImageFacts,
    PlainRun,
)
from envassay.targets.image.build import (
    ImageError,
    ImageResult,
    builds,
    direct_build,
    ensure_image,
)
from envassay.targets.image.context import assemble_context
from envassay.targets.image.facts import env_prefix, gather_facts, image_pythons
from envassay.targets.image.options import (
    DEFAULT_BUILDER_IMAGE,
    DEFAULT_RUNTIME_IMAGE,
    ENV_PREFIX,
    USER_NAME,
    USER_UID,
    ImageOptions,
    creator_for,
    expects_gpu,
    host_has_gpu,
    resolve_options,
)
from envassay.targets.image.plan import (
    ImagePlan,
    engine_platform,
    plan_image,
    repository_name,
    usable_lock,
)

__all__ = [
    "DEFAULT_BUILDER_IMAGE",
    "DEFAULT_RUNTIME_IMAGE",
    "ENV_PREFIX",
    "LABEL_LOCK_HASH",
    "LABEL_PREFIX",
    "LABEL_SPEC_HASH",
    "LABEL_SPEC_NAME",
    "OCI_LABELS",
    "USER_NAME",
    "USER_UID",
    "ImageError",
    "ImageFacts",
    "ImageOptions",
    "ImagePlan",
    "ImageResult",
    "PlainRun",
    "assemble_context",
    "builds",
    "creator_for",
    "direct_build",
    "engine_platform",
    "ensure_image",
    "env_prefix",
    "expects_gpu",
    "gather_facts",
    "host_has_gpu",
    "image_pythons",
    "plan_image",
    "repository_name",
    "resolve_options",
    "usable_lock",
]
