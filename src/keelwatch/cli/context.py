"""What every command shares: settings, the store (opened on first use), consoles, progress."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from keelwatch.config import Settings
    from keelwatch.store import Store

# Results go to stdout, everything else (logs, progress, warnings) to stderr: scripts can pipe.
stdout = Console(soft_wrap=True)
stderr = Console(stderr=True)


@dataclass
class AppContext:
    config_path: str | None = None
    quiet: bool = False
    _settings: Any = None
    _store: Any = None
    _closers: list[Any] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from keelwatch.config import load_settings

            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def store(self) -> Store:
        if self._store is None:
            from keelwatch.store import Store

            self._store = Store(self.settings)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            close = getattr(self._store, "close", None)
            if close:
                close()


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):
        obj = AppContext()
        ctx.find_root().obj = obj
    return obj


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    if quiet:
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=stderr, show_path=False)], force=True)


@contextlib.contextmanager
def layer_progress(label: str, enabled: bool = True) -> Iterator[Any]:
    """A progress bar on stderr (only on a terminal), fed as (done, total) layer counts."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} layers"), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def image_options(app: AppContext, image: str, *, platform: str | None, insecure: bool,
                  docker_config: str | None) -> Any:
    """The ``OpenOptions`` for reading ``image``: command-line flags over the ``[scan]`` settings."""
    from keelwatch.images.layers import Limits
    from keelwatch.images.source import OpenOptions
    from keelwatch.model import Platform
    from keelwatch.pipeline import registry_is_insecure

    scan = app.settings.scan
    return OpenOptions(
        platform=Platform.parse(platform) if platform else (Platform.parse(scan.platform) if scan.platform else None),
        insecure=insecure or registry_is_insecure(image, scan.insecure_registries),
        docker_config=docker_config,
        limits=Limits(max_layer_bytes=scan.max_layer_bytes, max_file_bytes=scan.max_file_bytes),
    )
