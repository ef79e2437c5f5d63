"""The wire contract, defined once: the server imports this package, the browser loads the same files.

`wire.types` holds what requests and responses carry, `wire.events` what an answer's stream
sends, and `wire.routes` each route with its types, from which the server registers its
handlers and the browser builds its stubs. Keep it to msgspec and the subset of the standard
library shared by CPython 3.11 (server) and Pyodide's CPython 3.14 (browser).
"""
