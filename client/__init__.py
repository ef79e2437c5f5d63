"""The browser side of snake_llama; also importable by CPython (no DOM at import time)."""
