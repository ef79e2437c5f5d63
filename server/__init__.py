"""snake_llama's server: one shared local model behind a Starlette app."""
