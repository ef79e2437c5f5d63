"""Our API's models from the Hugging Face Hub (server.downloads): a repository's files, and the
downloads into the models folder (start, follow, cancel)."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from server.bodies import body_of
from server.downloads import Downloads
from server.errors import ApiError
from wire.routes import CANCEL_DOWNLOAD, DOWNLOADS, HUB_REPO, START_DOWNLOAD
from wire.types import RepoId


def downloads_of(request: Request) -> Downloads:
    downloads: Downloads = request.app.state.downloads
    return downloads


def json_response(value: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status, media_type="application/json")


async def hub_repo(request: Request) -> Response:
    repo = f"{request.path_params['owner']}/{request.path_params['name']}"
    try:
        msgspec.convert(repo, RepoId)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_request", f"{repo!r} is not a repository name (owner/name)") from exc
    return json_response(await downloads_of(request).repo(repo))


async def list_downloads(request: Request) -> Response:
    return json_response(downloads_of(request).listing())


async def start_download(request: Request) -> Response:
    body = await body_of(request, START_DOWNLOAD)
    return json_response(await downloads_of(request).start(body), 201)


async def cancel_download(request: Request) -> Response:
    downloads_of(request).cancel(request.path_params["download_id"])
    return Response(status_code=204)


ROUTES = (
    (HUB_REPO, hub_repo), (DOWNLOADS, list_downloads), (START_DOWNLOAD, start_download),
    (CANCEL_DOWNLOAD, cancel_download),
)
