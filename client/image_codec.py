"""An image made ready to send, by the browser's own decoders: scaled down to client.images'
bound with `createImageBitmap` and an `OffscreenCanvas`, a GIF's first frame as a PNG, and any
other image sent as it came (its bytes untouched, so nothing is lost to a second encoding).

Browser only (`js` is imported inside): the sizes and types it works to are client.images'.
"""

from __future__ import annotations

from client.images import JPEG, JPEG_QUALITY, WEBP, Prepared, fitted, redrawn, sent_type


async def prepare(kind: str, data: bytes) -> Prepared:
    """The image of type `kind` as it is sent; raises (a JsException) when the browser cannot decode it."""
    from js import Blob, OffscreenCanvas, Uint8Array, createImageBitmap
    from pyodide.ffi import to_js

    from client.browser import to_init

    bitmap = await createImageBitmap(Blob.new(to_js([Uint8Array.new(data)]), to_init({"type": kind})))
    try:
        width, height = int(bitmap.width), int(bitmap.height)
        if not redrawn(kind, width, height):
            return Prepared(kind, data, width, height)
        width, height = fitted(width, height)
        canvas = OffscreenCanvas.new(width, height)
        context = canvas.getContext("2d")
        context.imageSmoothingQuality = "high"
        context.drawImage(bitmap, 0, 0, width, height)
    finally:
        bitmap.close()
    out = sent_type(kind)
    options = {"type": out, "quality": JPEG_QUALITY} if out in (JPEG, WEBP) else {"type": out}
    blob = await canvas.convertToBlob(to_init(options))
    return Prepared(str(blob.type), bytes((await blob.arrayBuffer()).to_bytes()), width, height)
