"""The models a server offers, by file name: `MODEL_PATH` (the default), and every model file in
`MODELS_DIR`, each loaded on first use.

The folder is read again whenever the list is asked for, so files added or removed show up
without a restart. At most `MAX_LOADED_MODELS` stay loaded: loading one more retires the least
recently used, which is closed once its running answers have ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from msgspec import structs

from server.engines.base import Engine, ModelLoadError
from server.engines.loader import EngineLoader, plan_engine, resolve_model_path
from server.scheduler import Scheduler
from server.settings import Settings
from wire.types import ModelInfo, ModelList

log = logging.getLogger("snake_llama")
MODEL_SUFFIXES = (".gguf", ".bin")


class UnknownModel(Exception):
    """No model by that name."""


@dataclass(frozen=True)
class ModelFile:
    info: ModelInfo
    path: Path | None  # None: the remote engine's model


def describe(path: Path, settings: Settings) -> ModelInfo:
    """What a model file is, read from its first bytes and header; never raises."""
    from server.engines.gguf import read_header
    from server.engines.magic import detect_format

    name = path.name
    try:
        kind = detect_format(path)
        if kind == "ggml" or settings.engine == "ctransformers":
            return ModelInfo(name, True, engine="ctransformers", n_ctx=settings.n_ctx, template="seed")
        meta = read_header(path).meta
    except ModelLoadError as exc:
        return ModelInfo(name, False, reason=str(exc))
    trained = meta.get(f"{meta.get('general.architecture')}.context_length")
    n_ctx = min(settings.n_ctx, trained) if isinstance(trained, int) and trained > 0 else settings.n_ctx
    own = isinstance(meta.get("tokenizer.chat_template"), str)
    choice = settings.prompt_template
    template = ("gguf" if own else "seed") if choice == "auto" else choice
    return ModelInfo(name, True, engine="llama-cpp", n_ctx=n_ctx, template=template)


class Models:
    def __init__(
        self, settings: Settings, load_default: EngineLoader, make_scheduler: Callable[[Engine], Scheduler]
    ) -> None:
        """`load_default` loads MODEL_PATH (or connects to the remote): the app checked it already."""
        self.settings = settings
        self._load_default = load_default
        self._make_scheduler = make_scheduler
        remote = settings.engine == "openai"
        self.default_path = None if remote else resolve_model_path(settings)  # None: the remote engine's model
        self.default = (settings.openai_model or "remote") if self.default_path is None else self.default_path.name
        self._described: dict[tuple[str, float, int], ModelInfo] = {}
        self._loaded: dict[str, Scheduler] = {}  # least recently used first
        self._loading: dict[str, asyncio.Task[Scheduler]] = {}
        self._retiring: set[asyncio.Task[None]] = set()

    # -- the list ------------------------------------------------------------------------------

    def files(self) -> dict[str, ModelFile]:
        """Every model on offer, by name, the folder read now."""
        if self.default_path is None:
            scheduler = self._loaded.get(self.default)
            n_ctx = scheduler.engine.n_ctx if scheduler else self.settings.n_ctx
            return {self.default: ModelFile(ModelInfo(self.default, True, engine="openai", n_ctx=n_ctx), None)}
        paths = [self.default_path]
        folder = self.settings.models_dir
        if folder:
            try:
                entries = sorted(Path(folder).expanduser().iterdir())
            except OSError as exc:
                log.warning("cannot read MODELS_DIR %s: %s", folder, exc)
                entries = []
            paths += [p for p in entries if p.suffix.lower() in MODEL_SUFFIXES and p.is_file()]
        found: dict[str, ModelFile] = {}
        for path in paths:
            found.setdefault(path.name, ModelFile(self._describe(path), path))
        return found

    def _describe(self, path: Path) -> ModelInfo:
        try:
            stat = path.stat()  # follows symlinks
        except OSError as exc:
            return ModelInfo(path.name, False, reason=f"cannot read {path}: {exc.strerror}")
        key = (str(path), stat.st_mtime, stat.st_size)
        if key not in self._described:
            self._described[key] = describe(path, self.settings)
        return self._described[key]

    def listing(self) -> ModelList:
        files = self.files()
        self._retire_vanished(files)
        models = [structs.replace(f.info, loaded=name in self._loaded) for name, f in files.items()]
        return ModelList(self.default, models)

    def resolve(self, name: str | None) -> str:
        """The model a request names: the default when it names none. With one model only, any name
        is that model (as llama.cpp's own server does); with a folder, an unknown name is refused."""
        if not name or name == self.default:
            return self.default
        if not self.settings.models_dir:
            return self.default
        if name not in self.files():
            raise UnknownModel(f"no model named {name!r}: GET /v1/models lists the models on offer")
        return name

    # -- loading ---------------------------------------------------------------------------------

    def touch(self, name: str) -> Scheduler | None:
        """The model's scheduler if it is loaded, now the most recently used."""
        scheduler = self._loaded.get(name)
        if scheduler is not None:
            self._loaded[name] = self._loaded.pop(name)  # now the most recently used
        return scheduler

    @property
    def queue_depth(self) -> int:
        return sum(s.queue_depth for s in self._loaded.values())

    @property
    def loaded_names(self) -> list[str]:
        return list(self._loaded)

    @property
    def loaded_default(self) -> Scheduler | None:
        return self._loaded.get(self.default)

    def is_loading(self, name: str) -> bool:
        return name in self._loading

    async def load(self, name: str) -> Scheduler:
        """The model's scheduler, loading the model first if need be (one load per model, however
        many requests wait for it). `ModelLoadError` names the file and the cause."""
        if (ready := self.touch(name)) is not None:
            return ready
        task = self._loading.get(name)
        if task is None:
            task = self._loading[name] = asyncio.create_task(self._load(name))
            task.add_done_callback(lambda _: self._loading.pop(name, None))
        return await asyncio.shield(task)

    async def _load(self, name: str) -> Scheduler:
        file = self.files().get(name)
        if file is None:
            raise ModelLoadError(f"model {name} is gone from {self.settings.models_dir}")
        if not file.info.usable:
            raise ModelLoadError(file.info.reason)
        if name == self.default:
            load = self._load_default
        else:
            # each model in the folder gets N_CTX, or as much as it was trained for if that is less
            load = plan_engine(replace(self.settings, model_path=str(file.path), n_ctx=file.info.n_ctx))
        engine = await asyncio.to_thread(load)
        scheduler = self._make_scheduler(engine)
        self._loaded[name] = scheduler
        log.info("%s loaded %s", engine.name, engine.model)
        self._make_room(keep=name)
        return scheduler

    def _make_room(self, keep: str) -> None:
        while len(self._loaded) > self.settings.max_loaded_models:
            oldest = next(n for n in self._loaded if n != keep)
            self._retire(oldest)

    def _retire(self, name: str) -> None:
        """Unload `name` once its running and waiting answers have ended; new ones load it anew."""
        scheduler = self._loaded.pop(name)
        task = asyncio.create_task(self._close_when_idle(name, scheduler))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _close_when_idle(self, name: str, scheduler: Scheduler) -> None:
        await scheduler.idle()
        await asyncio.to_thread(scheduler.close)
        log.info("unloaded %s", name)

    def _retire_vanished(self, files: dict[str, ModelFile]) -> None:
        for name in [n for n in self._loaded if n not in files]:
            log.info("%s was removed from %s", name, self.settings.models_dir)
            self._retire(name)

    def close(self) -> None:
        for task in [*self._loading.values(), *self._retiring]:
            task.cancel()
        for scheduler in self._loaded.values():
            scheduler.close()
        self._loaded.clear()
