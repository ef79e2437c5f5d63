"""OpenAI's embeddings: `POST /v1/embeddings`, from any GGUF model's embedding instance.

The `openai` client asks for base64 unless told otherwise (little-endian float32s, which it
decodes itself); vectors are L2-normalised, as OpenAI's are.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.bodies import body_of, client_of
from server.chat import ChatService
from server.errors import ApiError
from wire.routes import Route

MAX_INPUTS = 2048  # OpenAI's own bound on one request's inputs


def check_dimensions(dimensions: int | None) -> None:
    """Refuse a vector size asked for: a model's vectors have its own (cutting them needs a model trained for it)."""
    if dimensions is not None:
        raise ApiError(400, "unsupported_parameter", "dimensions is not supported: vectors have the model's size")


# Unknown fields are allowed (`user`, say), as on OpenAI's other routes here.
class EmbeddingRequest(Struct):
    input: str | Annotated[list[str | int | list[int]], Meta(min_length=1, max_length=MAX_INPUTS)]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None

    def texts(self) -> list[str]:
        """The texts to embed; what this server cannot do is a 400 that names it."""
        check_dimensions(self.dimensions)
        texts = [self.input] if isinstance(self.input, str) else self.input
        if not all(isinstance(t, str) for t in texts):
            # another model's token ids (tiktoken's, as some clients send) mean nothing to this one
            raise ApiError(400, "unsupported_parameter", "input: token ids are not supported; send the text")
        return [str(t) for t in texts]


EMBEDDINGS: Route[EmbeddingRequest, Any] = Route("POST", "/v1/embeddings", EmbeddingRequest)


def encoded(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    floats = array("f", vector)  # float32
    if sys.byteorder == "big":  # pragma: no cover - the wire's order is little-endian
        floats.byteswap()
    return base64.b64encode(floats.tobytes()).decode()


async def embeddings(request: Request) -> Response:
    chats: ChatService = request.app.state.chats
    body = await body_of(request, EMBEDDINGS)
    model, vectors, tokens = await chats.embed(body.model, body.texts(), client_of(request))
    data = [{"object": "embedding", "index": i, "embedding": encoded(v, body.encoding_format)}
            for i, v in enumerate(vectors)]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return JSONResponse({"object": "list", "data": data, "model": model, "usage": usage})


ROUTES = ((EMBEDDINGS, embeddings),)
