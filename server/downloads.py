"""Models from the Hugging Face Hub, through `huggingface_hub` (which honours HF_ENDPOINT and
HF_TOKEN, as the Hub's own tools do): a repository's GGUF files, and downloads into the models
folder that run on the server, whether or not a page watches them.

A download is fetched into a folder of its own inside the models folder (`.downloading/<id>`,
which the model listing never reads), checked against the Hub's SHA-256 of each file, and only
then moved in beside the other models: a partial or corrupt file is never offered as a model.
A connection that drops mid-file is resumed from where it stopped (`huggingface_hub` asks for
the rest with a Range request). Cancel stops it at its next chunk and deletes what it fetched.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.engines.gguf import SPLIT
from server.errors import ApiError
from wire.types import Download, DownloadList, DownloadRequest, DownloadStatus, HubFile, HubRepo

log = logging.getLogger("snake_llama")

STAGING = ".downloading"  # inside the models folder: the same file system, so finished files move in at once
QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32)(?![A-Za-z0-9])", re.IGNORECASE)
# Speed is measured over the last few updates: huggingface_hub reports a file 10 MiB at a time.
SPEED_SAMPLES = 6


class Cancelled(Exception):
    """Raised from the progress bar's update: huggingface_hub then deletes its partial file."""


def quant_of(name: str) -> str:
    found = QUANT.findall(name)
    return found[-1].upper() if found else ""


def memory_free() -> int:
    """Bytes of memory free for a model (Linux's MemAvailable; 0 where unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def gguf_files(siblings: list[tuple[str, int]], free: int) -> tuple[list[HubFile], list[HubFile]]:
    """A repository's (file name, size) pairs as its models, split sets as one, and its
    projectors; the largest model that fits in `free` bytes of memory is marked."""
    sets: dict[str, list[tuple[str, int]]] = {}
    for name, size in sorted(siblings):
        if not name.lower().endswith(".gguf"):
            continue
        match = SPLIT.match(Path(name).name)
        sets.setdefault(f"{match['stem']}-of-{match['parts']}" if match else name, []).append((name, size))
    models: list[HubFile] = []
    projectors: list[HubFile] = []
    for parts in sets.values():
        name, size = parts[0][0], sum(s for _, s in parts)
        file = HubFile(name, [n for n, _ in parts], size, quant_of(name), fits=0 < size < free)
        (projectors if "mmproj" in Path(name).name.lower() else models).append(file)
    fitting = [m for m in models if m.fits]
    if fitting:
        max(fitting, key=lambda m: m.size).best = True
    return models, projectors


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


@dataclass
class Job:
    download: Download
    sha256: dict[str, str]  # file -> the Hub's hash (files kept in git, not LFS, have none)
    commit: str  # the revision the listing was read at: every part comes from the same one
    cancelled: bool = False
    samples: list[tuple[float, int]] = field(default_factory=list)  # (time, bytes done): the last few

    def advance(self, n: int) -> None:
        if self.cancelled:
            raise Cancelled
        self.download.done += n
        self.samples = [*self.samples[-SPEED_SAMPLES + 1 :], (time.monotonic(), self.download.done)]
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        self.download.speed = (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0


def progress_for(job: Job) -> type[Any]:
    """A tqdm class that reports a file's bytes to `job` (and stops it when it is cancelled)."""
    from tqdm.auto import tqdm

    class Progress(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # no bar on the server's terminal
            super().__init__(*args, **kwargs)
            if kwargs.get("initial"):
                job.advance(int(kwargs["initial"]))

        def update(self, n: float | None = 1) -> bool | None:
            job.advance(int(n or 0))
            return None

    return Progress


class Downloads:
    def __init__(self, folder: Path, offline: bool) -> None:
        """`folder`: the models folder; `offline`: downloading is off."""
        self.folder = folder
        self.offline = offline
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _check_on(self) -> Path:
        if self.offline:
            raise ApiError(404, "downloads_off", "downloading models is off on this server (OFFLINE)")
        return self.folder

    def listing(self) -> DownloadList:
        return DownloadList([job.download for job in self._jobs.values()], enabled=not self.offline)

    async def repo(self, repo_id: str) -> HubRepo:
        """A repository's GGUF models and projectors, with what fits this machine."""
        folder = self._check_on()
        info = await asyncio.to_thread(_model_info, repo_id)
        folder.mkdir(parents=True, exist_ok=True)
        siblings = [(s.rfilename, s.size or 0) for s in info.siblings or ()]
        free = memory_free()
        models, projectors = gguf_files(siblings, free)
        return HubRepo(repo_id, models, projectors, free, shutil.disk_usage(folder).free)

    async def start(self, request: DownloadRequest) -> Download:
        """Start fetching a model (and its repository's projector, if asked); 4xx before anything
        is fetched when it cannot be: no such model, already there or on its way, no room."""
        folder = self._check_on()
        info = await asyncio.to_thread(_model_info, request.repo)
        siblings = {s.rfilename: s for s in info.siblings or ()}
        models, projectors = gguf_files([(n, s.size or 0) for n, s in siblings.items()], memory_free())
        chosen = next((m for m in models if m.name == request.name), None)
        if chosen is None:
            raise ApiError(404, "model_not_found", f"{request.repo} has no GGUF model named {request.name!r}")
        files = list(chosen.files)
        if request.vision:
            if not projectors:
                raise ApiError(400, "no_projector", f"{request.repo} has no mmproj file: its models do not take images")
            files += projectors[0].files
        for name in files:
            if (folder / Path(name).name).exists():
                raise ApiError(409, "already_there", f"{Path(name).name} is in the models folder already")
        if any(j.download.repo == request.repo and j.download.name == request.name and j.download.status in
               ("downloading", "checking") for j in self._jobs.values()):
            raise ApiError(409, "already_downloading", f"{request.name} is being downloaded already")
        total = sum(siblings[n].size or 0 for n in files)
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
        if total > free:
            raise ApiError(400, "insufficient_storage",
                           f"{request.name} needs {_gb(total)}; the models folder has {_gb(free)} free")
        hashes = {n: siblings[n].lfs.sha256 for n in files if siblings[n].lfs is not None}
        download = Download(uuid.uuid4().hex[:12], request.repo, request.name, files, total, 0, 0.0, "downloading")
        job = Job(download, hashes, info.sha or "main")
        self._jobs[download.id] = job
        task = asyncio.create_task(self._run(job, folder))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return download

    def cancel(self, download_id: str) -> None:
        job = self._jobs.get(download_id)
        if job is None:
            raise ApiError(404, "download_not_found", f"no download {download_id!r}")
        if job.download.status in ("downloading", "checking"):
            # said at once: the fetch stops at its next chunk, and nothing it fetched is kept
            job.cancelled, job.download.status = True, "cancelled"

    async def _run(self, job: Job, folder: Path) -> None:
        staging = folder / STAGING / job.download.id
        try:
            await asyncio.to_thread(self._fetch, job, staging)
            self._unless_cancelled(job, "checking")
            await asyncio.to_thread(self._check, job, staging)
            self._unless_cancelled(job, "checking")
            for name in job.download.files:  # in place at once: each is whole and checked
                (staging / name).replace(folder / Path(name).name)
            job.download.status = "done"
            log.info("downloaded %s from %s", job.download.name, job.download.repo)
        except Exception as exc:
            if job.cancelled or isinstance(exc, Cancelled):
                job.download.status = "cancelled"
                return
            job.download.status, job.download.error = "failed", _reason(exc)
            log.warning("download of %s from %s failed: %s", job.download.name, job.download.repo, job.download.error)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _unless_cancelled(job: Job, status: DownloadStatus) -> None:
        if job.cancelled:  # between two chunks' worth of work: nothing more is done, nothing kept
            raise Cancelled
        job.download.status = status

    @staticmethod
    def _fetch(job: Job, staging: Path) -> None:
        from huggingface_hub import hf_hub_download

        for name in job.download.files:
            hf_hub_download(job.download.repo, name, revision=job.commit, local_dir=staging,
                            tqdm_class=progress_for(job))

    @staticmethod
    def _check(job: Job, staging: Path) -> None:
        for name, expected in job.sha256.items():
            digest = hashlib.sha256()
            with (staging / name).open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != expected:
                raise ValueError(f"{name} is corrupt: its SHA-256 is not the Hub's; nothing was kept")

    async def close(self) -> None:
        for job in self._jobs.values():
            job.cancelled = True
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)


def _model_info(repo_id: str) -> Any:
    """The repository's files with their sizes and hashes; its errors in words, as 4xx/502."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    try:
        return HfApi().model_info(repo_id, files_metadata=True)
    except GatedRepoError as exc:
        raise ApiError(403, "gated_repo", f"{repo_id} is gated: accept its terms on the Hub and set HF_TOKEN") from exc
    except RepositoryNotFoundError as exc:
        raise ApiError(404, "repo_not_found", f"no repository {repo_id} on the Hub (or it is private: set HF_TOKEN)") \
            from exc
    except HfHubHTTPError as exc:
        raise ApiError(502, "hub_error", f"the Hub answered: {_reason(exc)}") from exc
    except Exception as exc:  # offline, refused, a name that does not resolve: the network's, in its words
        raise ApiError(502, "hub_unreachable", f"cannot reach the Hub: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
