"""Our API's hold on the model list (the page's Models dialog): load a model now, unload it, or
delete its file from the models folder. Each answers 204 once done, or 4xx saying why not."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.api import chats_of
from server.errors import ApiError
from server.models import UnknownModel
from wire.routes import DELETE_MODEL, LOAD_MODEL, UNLOAD_MODEL


def named(request: Request) -> str:
    """The model the path names; 404 when there is none by that name (503 while starting)."""
    name: str = request.path_params["name"]
    if name not in chats_of(request).models.paths() and name != chats_of(request).model_named(None):
        raise ApiError(404, "model_not_found", f"no model named {name!r}: GET /api/models lists them")
    return name


async def load_model(request: Request) -> Response:
    await chats_of(request).load(named(request))
    return Response(status_code=204)


async def unload_model(request: Request) -> Response:
    chats_of(request).models.unload(named(request))
    return Response(status_code=204)


async def delete_model(request: Request) -> Response:
    try:
        chats_of(request).models.delete(named(request))
    except UnknownModel as exc:
        raise ApiError(404, "model_not_found", str(exc)) from exc
    except PermissionError as exc:
        raise ApiError(403, "not_deletable", str(exc)) from exc
    return Response(status_code=204)


ROUTES = ((LOAD_MODEL, load_model), (UNLOAD_MODEL, unload_model), (DELETE_MODEL, delete_model))
