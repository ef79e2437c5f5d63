"""The app built from the environment alone, for uvicorn's reloader (`make watch`)."""

from server.app import create_app
from server.engines.loader import load_engine
from server.settings import Settings

settings = Settings.load()
app = create_app(settings, load_engine(settings))
