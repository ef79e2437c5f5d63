"""The app built from the environment alone, for uvicorn's reloader (`make watch`)."""

from server.__main__ import fail, fail_loading
from server.app import create_app
from server.engines.base import ModelLoadError
from server.engines.loader import plan_engine
from server.settings import Settings

settings = Settings.load()
try:
    app = create_app(settings, plan_engine(settings), fail_loading)
except ModelLoadError as exc:
    fail(str(exc))
