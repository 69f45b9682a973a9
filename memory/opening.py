"""Opening a store: create it with its fixed settings, or open one and check what was asked against it.

A new store gets its config (model, dim, bits, method, hint bytes, fidelity, the
embedder's fingerprint) and first hasher in one transaction, so a killed creation
leaves no half store; an existing one is refused when a setting asked for differs
from the one fixed at creation, or when its embedder turns out to be another model.

What it does not do: pick or open the backend (``backends.open_backend``) or follow
other processes' commits (``state``).
"""

from __future__ import annotations

from . import hashing
from . import refit as refitting
from .config import StoreConfig
from .embedding.embedder import Embedder, same_model
from .errors import ConfigError, ModelMismatchError, StoreCorruptError, StoreError
from .state import SharedState

ALIASES = {"sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2"}


def canonical_model(name: str) -> str:
    """The name a store records for a model (the sentence-transformers alias of the default is folded)."""
    return ALIASES.get(name, name)


def create(mem, *, model, bits, method, hint_bytes, fidelity) -> bool:
    """Create the store in one transaction; False if another process created it meanwhile.

    Sets ``mem.embedder`` and ``mem.state``.

    Raises:
        StoreError: the backend is read-only.
    """
    backend = mem.backend
    if backend.readonly:
        raise StoreError(f"cannot create a store at {mem.path}: read-only")
    name = canonical_model(model or StoreConfig.model)
    mem.embedder = Embedder(name)
    dim = mem.embedder.dim
    method = method or StoreConfig.method
    config = StoreConfig(
        model=name, dim=dim, bits=(dim if method == "sign" else min(StoreConfig.bits, dim)) if bits is None else bits,
        method=method, hint_bytes=StoreConfig.hint_bytes if hint_bytes is None else hint_bytes,
        fidelity=fidelity or "hints", fingerprint=mem.embedder.fingerprint(),
    )
    raw = hashing.initial_hasher(method, dim=dim, bits=config.bits).to_bytes(
        compress=refitting.compressed_hasher(backend))
    settings = {"hasher": raw}
    mem.state = SharedState(config, raw)
    if config.fidelity == "llm":  # the coder's model and parameters, fixed from now on
        from .tiers.llm import META_KEY

        settings[META_KEY] = mem._llm().describe()
    if not backend.initialize(config, settings):  # one transaction: a kill leaves no half store
        return False
    mem._verified = True  # the fingerprint was just taken from this embedder
    return True


def open_existing(mem, *, model, bits, method, hint_bytes, fidelity) -> None:
    """Load an existing store's config and state into ``mem`` (``state``, ``embedder``).

    Raises:
        ModelMismatchError: ``model`` is not the store's.
        ConfigError: another setting differs from the one fixed at creation.
        StoreCorruptError: the store has records but no hashing parameters.
    """
    backend = mem.backend
    config = backend.load_config()
    if model is not None and canonical_model(model) != config.model:
        raise ModelMismatchError(
            f"{mem.path} was built with model {config.model!r}, not {model!r}; open it "
            f"without a model (or with {config.model!r}), or use a new store"
        )
    for name, asked, have in (("bits", bits, config.bits), ("method", method, config.method),
                              ("hint_bytes", hint_bytes, config.hint_bytes), ("fidelity", fidelity, config.fidelity)):
        if asked is not None and asked != have:
            raise ConfigError(
                f"{mem.path} has {name}={have!r}, fixed at creation; you asked for {asked!r}. "
                "Open it without that setting, or create a new store"
            )
    raw = backend.setting("hasher")
    if raw is None:
        raw = _finish_creation(mem, config)
    mem.state = SharedState(config, raw, backend.setting("quantizer"))
    mem.embedder = Embedder(config.model)
    mem._verified = False


def _finish_creation(mem, config: StoreConfig) -> bytes:
    """A store whose creation was killed (by a version that took two transactions) before its
    hashing parameters were written: finish it when it holds no records, else refuse."""
    backend = mem.backend
    if backend.readonly or backend.count():
        raise StoreCorruptError(f"{mem.path} has no hashing parameters")
    raw = hashing.initial_hasher(config.method, dim=config.dim, bits=config.bits).to_bytes()
    with backend.transaction() as c:
        current = backend.setting("hasher")  # another process may have finished it first
        if current is not None:
            return bytes(current)
        backend.put_setting(c, "hasher", raw)
    return raw


def verify_model(mem) -> None:
    """Check that the loaded embedder behaves like the one the store was built with.

    Raises:
        ModelMismatchError: its fingerprint (dim, probe hash) is another model's.
    """
    current, stored = mem.embedder.fingerprint(), mem.config.fingerprint
    if stored and not same_model(stored, current):
        raise ModelMismatchError(
            f"{mem.path} was built with model {stored.get('name')!r} (dim {stored.get('dim')}, "
            f"probe {stored.get('probe_sha')}); the model loaded as {mem.config.model!r} gives "
            f"dim {current['dim']}, probe {current['probe_sha']}: it is another model"
        )
