"""The models a server offers, by file name: `MODEL_PATH` (the default), and every model file in
the models folder (`MODELS_DIR`, by default the user's data folder), each loaded on first use.

A model takes images when a vision projector goes with it (`server.engines.projector`): MMPROJ
for MODEL_PATH, a paired `mmproj*.gguf` in the folder; a projector is never listed as a model.

The folder is read again whenever the list is asked for, so files added or removed show up
without a restart; a file's header is read again only when its size or time changes. At most
`MAX_LOADED_MODELS` are held: loads run one at a time, and before one starts the least recently
used model is retired and closed (once its running answers have ended), so two never share the
memory one was given.

Models of other servers (REMOTES, `server.remotes`) join the list under their remote's label.
They hold no memory here: they are not counted against MAX_LOADED_MODELS, and connecting one never
waits for a local load.

What clients read (a listing's reasons, a load's error) names a file by its name only: the
server's folders are none of their business. The operator's log has the whole message.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from msgspec import structs

from server.engines.base import Engine, ModelLoadError, ProcessEngine
from server.engines.gguf import FILE_TYPES, SPLIT, later_part
from server.engines.loader import EngineLoader, plan_embedder, plan_engine, resolve_model_path
from server.engines.projector import check_projector, is_projector, pair
from server.remotes import Remotes, RemoteUnavailable
from server.scheduler import Scheduler
from server.settings import Settings
from wire.types import ModelInfo, ModelList

log = logging.getLogger("snake_llama")
MODEL_SUFFIXES = (".gguf", ".bin")
EMBEDDINGS = " (embeddings)"  # after a model's name: its embedding instance, loaded apart


def loaded_as(name: str, embeddings: bool) -> str:
    """The name a model's instance is held under: its own, or its embedding instance's."""
    return name + EMBEDDINGS if embeddings else name


class UnknownModel(Exception):
    """No model by that name."""


@dataclass(frozen=True)
class ModelFile:
    info: ModelInfo
    path: Path | None  # None: a remote's model (ENGINE=openai's, or one of REMOTES)
    mmproj: Path | None = None  # its vision projector


def models_folder(settings: Settings) -> Path:
    """The folder whose model files are offered beside the default: MODELS_DIR, else the user's
    data folder as the XDG base directory spec puts it (a relative XDG_DATA_HOME is to be ignored)."""
    if settings.models_dir:
        return Path(settings.models_dir).expanduser()
    data = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data) if os.path.isabs(data) else Path.home() / ".local" / "share"
    return base / "snake_llama" / "models"


def describe(path: Path, settings: Settings) -> ModelInfo:
    """What a model file is, read from its first bytes and header; never raises."""
    from server.engines.gguf import check_whole, read_header
    from server.engines.magic import detect_format

    name = path.name
    try:
        kind = detect_format(path)
        if kind == "ggml" or settings.engine == "ctransformers":
            return ModelInfo(name, True, engine="ctransformers", n_ctx=settings.n_ctx, template="seed")
        header = read_header(path)
        check_whole(path, header)  # llama.cpp would refuse it at every request that names it
    except ModelLoadError as exc:
        return ModelInfo(name, False, reason=for_clients(str(exc), path))
    meta = header.meta
    trained = meta.get(f"{meta.get('general.architecture')}.context_length")
    n_ctx = min(settings.n_ctx, trained) if isinstance(trained, int) and trained > 0 else settings.n_ctx
    own = isinstance(meta.get("tokenizer.chat_template"), str)
    choice = settings.prompt_template
    template = ("gguf" if own else "seed") if choice == "auto" else choice
    arch = meta.get("general.architecture")
    arch = arch if isinstance(arch, str) else ""
    file_type = meta.get("general.file_type")
    quant = FILE_TYPES.get(file_type, "") if isinstance(file_type, int) else ""
    return ModelInfo(name, True, engine="llama-cpp", n_ctx=n_ctx, template=template, architecture=arch, quant=quant)


def parts_of(path: Path) -> list[Path]:
    """A model's files: itself, or every part of a split model (named by its first)."""
    match = SPLIT.match(path.name)
    if match is None:
        return [path]
    count = int(match["parts"])
    return [path.with_name(f"{match['stem']}-{n:05d}-of-{count:05d}.gguf") for n in range(1, count + 1)]


def _size(path: Path | None) -> int:
    return sum(p.stat().st_size for p in parts_of(path) if p.exists()) if path is not None else 0


def for_clients(text: str, path: Path) -> str:
    """`text` with the model file named by its name alone, and its folders (a symlink's target's
    too) by no name at all."""
    shown = {str(path): path.name, str(path.parent): "its folder"}
    try:
        real = path.resolve()
        shown |= {str(real): path.name, str(real.parent): "its folder"}
    except OSError:
        pass
    for full in sorted(shown, key=len, reverse=True):  # a file's path before its folder's
        if full not in (".", "/"):
            text = text.replace(full, shown[full])
    return text


def _stamp(path: Path) -> tuple[int, int] | None:
    """What changes when a file does (a file still being copied in changes both); None: unreadable."""
    try:
        stat = path.stat()  # follows symlinks
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _tied_to(server: int) -> None:
    """The header reader's first step: it dies with the server, however the server ends (a load
    error's os._exit, kill -9), and holds none of its output pipes, which whoever waits for the
    server's output to end would otherwise wait on."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server:  # the server ended before the line above
        os._exit(0)


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
        # by path: the (mtime, size) a file's header was read at, and what it said
        self._described: dict[str, tuple[tuple[int, int], ModelInfo]] = {}
        self._loaded: dict[str, Scheduler] = {}  # least recently used first
        self._loading: dict[str, asyncio.Task[Scheduler]] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._one_load = asyncio.Lock()  # two loads at once would hold two models' memory at once
        # the requests (their tasks) that were handed a model: it is not closed under them, even
        # before their answer reaches its scheduler (rendering the prompt takes a while)
        self._users: dict[Scheduler, set[asyncio.Task[Any]]] = {}
        self._header_reader: ProcessPoolExecutor | None = None  # started on the first header read
        self._unreadable = ""  # why the models folder could not be read last time, if it could not
        self.remotes = Remotes(settings)

    # -- the list ------------------------------------------------------------------------------

    def paths(self) -> dict[str, Path]:
        """The model files on offer, by name, the folder read now; no header is read (the remote
        engine's model has none)."""
        return self._scan()[0]

    def _scan(self) -> tuple[dict[str, Path], dict[str, Path]]:
        """The model files on offer by name, and the vision projectors that go with them by the
        model's name, the folder read now."""
        if self.default_path is None:
            return {}, {}
        paths = [self.default_path]
        projectors = {self.default_path.name: Path(self.settings.mmproj).expanduser()} if self.settings.mmproj else {}
        folder = models_folder(self.settings)
        try:
            if not self.settings.models_dir:  # the default folder is ours to make; a configured one is not
                folder.mkdir(parents=True, exist_ok=True)
            entries = sorted(p for p in folder.iterdir() if p.is_file())
        except OSError as exc:
            if self._unreadable != str(exc):  # once per cause, not at every request
                log.warning("cannot read the models folder %s: %s", folder, exc)
            self._unreadable = str(exc)
            entries = []
        models = [
            p for p in entries if p.suffix.lower() in MODEL_SUFFIXES and not is_projector(p) and not later_part(p.name)
        ]
        paired = pair([p for p in models if p.suffix.lower() == ".gguf"], filter(is_projector, entries))
        paths += models
        for model, projector in paired.items():
            if model.name != self.default_path.name:  # MODEL_PATH's projector is MMPROJ's alone
                projectors[model.name] = projector
        found: dict[str, Path] = {}
        for path in paths:
            found.setdefault(path.name, path)
        return found, {name: projectors[name] for name, path in found.items() if name in projectors}

    def files(self) -> dict[str, ModelFile]:
        """Every model on offer, by name, the folder read now and the remotes as they listed last.
        It may read headers: on the event loop, prefer `afiles`."""
        remote = {info.name: ModelFile(info, None) for info in self.remotes.infos()}
        if self.default_path is None:
            scheduler = self._loaded.get(self.default)
            n_ctx = scheduler.engine.n_ctx if scheduler else self.settings.n_ctx
            info = ModelInfo(self.default, True, engine="openai", n_ctx=n_ctx)
            return {self.default: ModelFile(info, None), **remote}
        paths, projectors = self._scan()
        found = {name: self._with_projector(ModelFile(self._describe(path), path), projectors.get(name))
                 for name, path in paths.items()}
        kept = {str(path) for path in [*paths.values(), *projectors.values()]}
        for gone in [p for p in self._described if p not in kept]:  # a header read once is no leak
            self._described.pop(gone, None)
        return {**found, **remote}

    async def afiles(self) -> dict[str, ModelFile]:
        """`files`, its headers read in a process of their own (parsing a big or crafted header
        holds the GIL: a thread would slow the event loop to hundreds of ms a request), and the
        remotes asked again, at once, where their listing is not fresh."""
        await asyncio.gather(self._read_headers(), self.remotes.refresh())
        return self.files()  # every header read now is cached: only the stamps are looked at

    async def _read_headers(self) -> None:
        if self.default_path is None:
            return
        loop = asyncio.get_running_loop()
        for path in (await asyncio.to_thread(self.paths)).values():
            stamp = _stamp(path)
            cached = self._described.get(str(path))
            if stamp is not None and (cached is None or cached[0] != stamp):
                info = await loop.run_in_executor(self._reader(), describe, path, self.settings)
                self._described[str(path)] = (stamp, info)

    def _with_projector(self, file: ModelFile, projector: Path | None) -> ModelFile:
        """`file` with its vision projector: it takes images, or it is unusable, saying why."""
        if projector is None or not file.info.usable or file.info.engine != "llama-cpp":
            return file
        stamp = _stamp(projector)
        cached = self._described.get(str(projector))
        if cached is None or cached[0] != stamp or stamp is None:
            try:
                check_projector(projector)
                info = ModelInfo(projector.name, True)
            except ModelLoadError as exc:
                info = ModelInfo(projector.name, False, reason=for_clients(str(exc), projector))
            if stamp is not None:
                self._described[str(projector)] = (stamp, info)
        else:
            info = cached[1]
        if not info.usable:
            reason = f"its vision projector {projector.name} cannot be used: {info.reason}"
            return replace(file, info=structs.replace(file.info, usable=False, reason=reason))
        return replace(file, info=structs.replace(file.info, vision=True), mmproj=projector)

    def _reader(self) -> ProcessPoolExecutor:
        if self._header_reader is None:
            self._header_reader = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=_tied_to, initargs=(os.getpid(),)
            )
        return self._header_reader

    def _describe(self, path: Path) -> ModelInfo:
        stamp = _stamp(path)
        if stamp is None:
            return ModelInfo(path.name, False, reason=f"cannot read {path.name}")
        cached = self._described.get(str(path))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        info = describe(path, self.settings)
        self._described[str(path)] = (stamp, info)
        return info

    async def listing(self) -> ModelList:
        """The list clients see."""
        return self._listed(await self.afiles())

    def _listed(self, files: dict[str, ModelFile]) -> ModelList:
        self._retire_vanished(files)
        models = [
            structs.replace(f.info, loaded=name in self._loaded, size=_size(f.path), deletable=self._deletable(f.path))
            for name, f in files.items()
        ]
        return ModelList(self.default, models)

    def _deletable(self, path: Path | None) -> bool:
        return path is not None and path.parent == models_folder(self.settings) and path != self.default_path

    def unload(self, name: str) -> None:
        """Unload the model (and its embedding instance) once their answers have ended."""
        for held in (name, loaded_as(name, True)):
            if held in self._loaded:
                self._retire(held)

    def delete(self, name: str) -> None:
        """Delete a model file of the models folder (a split model's every part), unloaded first;
        UnknownModel if there is none by that name, PermissionError for any other file."""
        path = self.paths().get(name)
        if path is None:
            raise UnknownModel(f"no model named {name!r}")
        if not self._deletable(path):
            raise PermissionError(f"{name} is not a file of the models folder: it is not deleted from here")
        self.unload(name)
        for part in parts_of(path):
            part.unlink(missing_ok=True)
        log.info("deleted %s", name)

    def resolve(self, name: str | None) -> str:
        """The model a request names: the default when it names none. While the default is the only
        model on offer, any name is that model (as llama.cpp's own server does: OpenAI clients send
        "gpt-4"); once there is a choice, an unknown name is refused."""
        if not name or name == self.default:
            return self.default
        if self.remotes.owner(name) is not None:
            return name  # whether its remote still lists it is for `check_remote` to ask
        paths = self.paths()
        if name in paths:
            return name
        if len(paths) <= 1 and not self.remotes:
            return self.default
        raise UnknownModel(f"no model named {name!r}: GET /v1/models lists the models on offer")

    async def check_remote(self, name: str) -> None:
        """For a remote's model: `RemoteUnavailable` while its remote does not answer (asked again
        if its last listing is not fresh), `UnknownModel` if the remote does not list it. Nothing
        for a local model."""
        remote = self.remotes.owner(name)
        if remote is None:
            return
        await remote.refresh()
        if remote.error:
            raise RemoteUnavailable(f"its server {remote.label} cannot be used now: {remote.error}")
        if name not in remote.models:
            raise UnknownModel(f"no model named {name!r}: {remote.label} lists {', '.join(remote.models) or 'none'}")

    # -- loading ---------------------------------------------------------------------------------

    def touch(self, name: str) -> Scheduler | None:
        """The model's scheduler if it is loaded, now the most recently used. A model whose
        process has ended is let go instead, so that the next load starts it again."""
        scheduler = self._loaded.get(name)
        if scheduler is not None and isinstance(scheduler.engine, ProcessEngine) and (why := scheduler.engine.ended()):
            log.warning("%s: %s; it loads again for the next request", name, why)
            self._users.get(scheduler, set()).discard(asyncio.current_task())  # its load must not wait for itself
            self._retire(name)
            return None
        if scheduler is not None:
            self._loaded[name] = self._loaded.pop(name)  # now the most recently used
            self._hand_over(scheduler)
        return scheduler

    def _hand_over(self, scheduler: Scheduler) -> None:
        task = asyncio.current_task()
        if task is not None:
            users = self._users.setdefault(scheduler, set())
            users.add(task)
            task.add_done_callback(users.discard)

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

    async def load(self, name: str, embeddings: bool = False) -> Scheduler:
        """The model's scheduler, loading the model first if need be (one load per model, however
        many requests wait for it); `embeddings`: its embedding instance's. `ModelLoadError`
        names the file and the cause."""
        held = loaded_as(name, embeddings)
        if (ready := self.touch(held)) is not None:
            return ready
        task = self._loading.get(held)
        if task is None:
            task = self._loading[held] = asyncio.create_task(self._load(name, embeddings))
            task.add_done_callback(lambda _: self._loading.pop(held, None))
        scheduler = await asyncio.shield(task)
        self._hand_over(scheduler)
        return scheduler

    async def _load(self, name: str, embeddings: bool) -> Scheduler:
        held = loaded_as(name, embeddings)
        remote = self.remotes.owner(name)
        if remote is not None:
            if embeddings:
                raise ModelLoadError(f"{name} gives no embeddings: they come from GGUF models on llama.cpp")
            await self.check_remote(name)
            try:
                engine = await asyncio.to_thread(remote.loader(name))
            except ModelLoadError as exc:  # it went away since it listed its models, or refuses them
                raise RemoteUnavailable(str(exc)) from None
            return self._hold(held, engine)
        async with self._one_load:
            if (ready := self.touch(held)) is not None:  # loaded while this load waited its turn
                return ready
            file = (await self.afiles()).get(name)
            if file is None:
                raise ModelLoadError(f"model {name} is gone from the models folder")
            if not file.info.usable:
                raise ModelLoadError(file.info.reason)
            if embeddings and file.info.engine != "llama-cpp":  # refused before any model makes room
                raise ModelLoadError(f"{name} gives no embeddings: they come from GGUF models on llama.cpp")
            await self._make_room()
            return self._hold(held, await self._start_engine(name, file, embeddings))

    def _hold(self, held: str, engine: Engine) -> Scheduler:
        scheduler = self._make_scheduler(engine)
        self._loaded[held] = scheduler
        log.info("%s loaded %s", engine.name, engine.model)
        return scheduler

    async def _start_engine(self, name: str, file: ModelFile, embeddings: bool) -> Engine:
        # each model in the folder gets N_CTX, or as much as it was trained for if that is less
        mmproj = str(file.mmproj) if file.mmproj else ""
        settings = replace(self.settings, model_path=str(file.path), n_ctx=file.info.n_ctx, mmproj=mmproj)
        if embeddings:
            load = plan_embedder(settings)
        elif name == self.default:
            load = self._load_default
        else:
            load = plan_engine(settings)
        try:
            return await asyncio.to_thread(load)
        except ModelLoadError as exc:
            if file.path is None:
                raise
            log.warning("%s", exc)  # the operator's log keeps the paths
            raise ModelLoadError(for_clients(str(exc), file.path)) from None

    async def _make_room(self) -> None:
        """Retire the least recently used local models until one more fits, and wait until they (and
        any retired before) are closed."""
        local = [n for n in self._loaded if self.remotes.owner(n) is None]  # least recently used first
        while local and len(local) >= self.settings.max_loaded_models:
            self._retire(local.pop(0))
        if self._retiring:
            await asyncio.wait(set(self._retiring))

    def _retire(self, name: str) -> None:
        """Unload `name` once its running and waiting answers have ended; new ones load it anew."""
        scheduler = self._loaded.pop(name)
        task = asyncio.create_task(self._close_when_idle(name, scheduler))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _close_when_idle(self, name: str, scheduler: Scheduler) -> None:
        if users := self._users.pop(scheduler, set()):
            await asyncio.wait(users)
        await scheduler.idle()
        await asyncio.to_thread(scheduler.close)
        log.info("unloaded %s", name)

    def _retire_vanished(self, files: dict[str, ModelFile]) -> None:
        for name in [n for n in self._loaded if n.removesuffix(EMBEDDINGS) not in files]:
            log.info("%s is no longer on offer", name)
            self._retire(name)

    def close(self) -> None:
        for task in [*self._loading.values(), *self._retiring]:
            task.cancel()
        for scheduler in self._loaded.values():
            scheduler.close()
        self._loaded.clear()
        if self._header_reader is not None:
            self._header_reader.shutdown(wait=False, cancel_futures=True)
        self.remotes.close()
