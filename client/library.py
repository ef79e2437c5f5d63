"""All the user's chats and which one is open: pure transitions, storage records, export.

The page holds one `Library` in a signal. A chat is saved under its own key, so a token
streaming into one chat rewrites that chat only; `records`/`from_records` are the whole
mapping between the library and the key-value store (client.storage does the I/O).
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping

import msgspec
from msgspec import Struct
from msgspec.structs import replace

from client.chat_markdown import export_markdown as export_markdown  # the Markdown export lives with its reader
from client.chat_markdown import import_markdown, is_markdown_export
from client.errors import NOT_OURS
from client.images import digest_of
from client.pictures import Picture
from client.state import Chat, Fork, Turn, configure, images_in, restore, sent_text, title_of
from wire.types import SystemPrompt

CHAT_PREFIX = "chat:"
OPEN_KEY = "open"
PINNED_KEY = "pinned"  # a JSON list of chat ids


class Library(Struct, frozen=True):
    chats: tuple[Chat, ...] = ()
    open_id: str = ""
    pinned: frozenset[str] = frozenset()  # ids of the chats listed first

    @property
    def current(self) -> Chat:
        return find(self, self.open_id) or Chat(id=self.open_id)

    @property
    def ordered(self) -> tuple[Chat, ...]:
        """Pinned first, then newest first; a chat nothing was sent in yet is not listed (nor saved)."""
        return tuple(sorted((c for c in self.chats if c.turns), key=lambda c: (c.id not in self.pinned, -c.updated)))


def find(library: Library, chat_id: str) -> Chat | None:
    return next((c for c in library.chats if c.id == chat_id), None)


def new_chat(library: Library, chat_id: str, model: str = "") -> Library:
    """Open a fresh empty chat on `model` (reusing the open one if it is still empty, back on the
    default system prompt and settings)."""
    if library.open_id and not library.current.turns:
        return update(library, library.open_id, lambda c: configure(c, system=None, preset=""))
    return replace(library, chats=library.chats + (Chat(id=chat_id, model=model),), open_id=chat_id)


def select(library: Library, chat_id: str) -> Library:
    if find(library, chat_id) is None:
        return library
    # Leaving an empty chat forgets it: it was never more than a blank page.
    chats = tuple(c for c in library.chats if c.turns or c.id == chat_id)
    return replace(library, chats=chats, open_id=chat_id)


def update(library: Library, chat_id: str, change: Callable[[Chat], Chat]) -> Library:
    """Apply `change(chat) -> chat` to one chat (created if missing: the first send of a new chat)."""
    old = find(library, chat_id)
    new = change(old or Chat(id=chat_id))
    if new is old:
        return library
    if old is None:
        return replace(library, chats=library.chats + (new,))
    return replace(library, chats=tuple(new if c is old else c for c in library.chats))


def rename(library: Library, chat_id: str, title: str) -> Library:
    return update(library, chat_id, lambda c: replace(c, title=" ".join(title.split())[:200]))


def forget_preset(library: Library, name: str) -> Library:
    """The user's preset `name` was deleted: chats that named it go back to the global settings, so
    none goes on naming it, nor adopts a later preset given the same name."""
    if not any(c.preset == name for c in library.chats):
        return library
    chats = tuple(configure(c, system=c.system, preset="") if c.preset == name else c for c in library.chats)
    return replace(library, chats=chats)


def set_pinned(library: Library, chat_id: str, pinned: bool) -> Library:
    if find(library, chat_id) is None:
        return library
    return replace(library, pinned=library.pinned | {chat_id} if pinned else library.pinned - {chat_id})


def matches(chat: Chat, query: str) -> bool:
    """Whether the search `query` is in the chat's title or any message's text (case-insensitive)."""
    words = " ".join(query.split()).casefold()
    if not words:
        return True
    texts = [title_of(chat)] + [t.text for t in chat.turns]
    return any(words in " ".join(text.split()).casefold() for text in texts)


def delete(library: Library, chat_id: str) -> Library:
    chats = tuple(c for c in library.chats if c.id != chat_id)
    kept = replace(library, chats=chats, pinned=library.pinned - {chat_id})
    if chat_id != library.open_id:
        return kept
    rest = kept.ordered
    return replace(kept, open_id=rest[0].id if rest else "")


def _same(a: Chat, b: Chat) -> bool:
    """The same chat, though one has no id to tell it by (a Markdown export, an older JSON one)."""
    said = [(t.user, sent_text(t)) for t in a.turns]
    return title_of(a) == title_of(b) and said == [(t.user, sent_text(t)) for t in b.turns]


def duplicates(library: Library, imported: Library) -> dict[str, str]:
    """Which imported chats the library has already: imported id -> the library's chat's id, matched
    by id, else by the same title and messages."""
    found: dict[str, str] = {}
    for chat in imported.chats:
        match = find(library, chat.id) or next((c for c in library.chats if c.turns and _same(c, chat)), None)
        if match is not None and match.turns:
            found[chat.id] = match.id
    return found


def add(library: Library, imported: Library, new_id: Callable[[], str], replacing: bool = False) -> Library:
    """Add the chats of `imported`, keeping their pins, and open the first listed. Those the library
    has already (`duplicates`) take the place of the library's own when `replacing`; else both are
    kept, the imported one under a fresh id."""
    same = duplicates(library, imported)
    ids = {c.id: (same[c.id] if replacing else new_id()) if c.id in same else c.id for c in imported.chats}
    incoming = tuple(replace(c, id=ids[c.id]) for c in imported.chats)
    gone = set(same.values()) if replacing else set()
    kept = tuple(c for c in library.chats if c.turns and c.id not in gone)  # a blank open chat is left
    pins = frozenset(ids[i] for i in imported.pinned if i in ids)
    ordered = Library(chats=incoming, pinned=pins).ordered
    first = ordered[0].id if ordered else library.open_id
    return Library(chats=kept + incoming, open_id=first, pinned=(library.pinned - gone) | pins)


# Storage records: key -> JSON text.

_chat_decoder = msgspec.json.Decoder(Chat)


def chat_key(chat_id: str) -> str:
    return CHAT_PREFIX + chat_id


def record_of(chat: Chat) -> str:
    return msgspec.json.encode(chat).decode()


def records(library: Library) -> dict[str, str]:
    out = {chat_key(c.id): record_of(c) for c in library.chats if c.turns}
    out[OPEN_KEY] = library.open_id
    pins = sorted(library.pinned & {c.id for c in library.chats if c.turns})
    if pins:  # no key while nothing is pinned
        out[PINNED_KEY] = msgspec.json.encode(pins).decode()
    return out


def from_records(stored: Mapping[str, object]) -> Library:
    """Rebuild the library; unreadable records are skipped, mid-stream answers the server named are
    kept for the app to resume (client.streams.AnswerStreams.resume_all), others marked interrupted."""
    chats = []
    for key, value in stored.items():
        if not key.startswith(CHAT_PREFIX) or not isinstance(value, str):
            continue
        try:
            chats.append(restore(_chat_decoder.decode(value), resume=True))
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    open_id = stored.get(OPEN_KEY)
    ids = {c.id for c in chats}
    if not isinstance(open_id, str) or open_id not in ids:
        open_id = max(chats, key=lambda c: c.updated).id if chats else ""
    pinned = stored.get(PINNED_KEY)
    try:
        pins = frozenset(msgspec.json.decode(pinned, type=list[str]) if isinstance(pinned, str) else ()) & ids
    except (msgspec.DecodeError, msgspec.ValidationError):
        pins = frozenset()
    return Library(chats=tuple(chats), open_id=open_id, pinned=pins)


# Export and import.


class ExportedChat(Struct):
    """The JSON export: versioned so a later format can still read it."""

    format: str
    title: str
    turns: list[Turn]  # each answer names the model that wrote it (`model`), where known
    id: str = ""  # the chat's own: importing it again is known by it (older exports have none)
    model: str = ""  # the model the chat asks; empty: the server's default (older exports have none)
    forks: tuple[Fork, ...] = ()  # earlier versions (Regenerate, Edit) by turn position; older exports have none
    pinned: bool = False  # older exports have none
    updated: float = 0.0  # when it was last sent in; 0: not recorded (older exports)
    system: SystemPrompt | None = None  # its own system prompt ("": none); None: the global one (older exports)
    preset: str = ""  # its sampling preset by name; empty: the global settings (older exports have none)
    # The tools it offers, by key. Never which run unasked: a file from elsewhere must not run tools.
    tools: tuple[str, ...] = ()
    # Its images' bytes (base64 in the JSON) by digest, those this browser has; older exports have none.
    images: dict[str, Picture] = {}


class ExportedLibrary(Struct):
    """All chats in one file (`EXPORT_ALL_FORMAT`), each as in a one-chat export."""

    format: str
    chats: list[ExportedChat]


EXPORT_FORMAT = "snake_llama.chat.v1"
# The one-chat exports offered, as (kind for App.export_file, what a menu calls it).
EXPORT_CHOICES = (("md", "Export as Markdown (.md)"), ("json", "Export as JSON (.json)"))
EXPORT_ALL_FORMAT = "snake_llama.chats.v1"


# The images an export carries: a digest's bytes, or None where this browser has not got them.
Pictures = Callable[[str], Picture | None]


def _no_pictures(_digest: str) -> Picture | None:
    return None


def _exported(chat: Chat, pinned: bool = False, pictures: Pictures = _no_pictures) -> ExportedChat:
    held = {image.digest: pictures(image.digest) for image in images_in(chat)}
    return ExportedChat(
        format=EXPORT_FORMAT,
        id=chat.id,
        title=title_of(chat),
        turns=list(chat.turns),
        model=chat.model,
        forks=chat.forks,
        pinned=pinned,
        updated=chat.updated,
        system=chat.system,
        preset=chat.preset,
        tools=chat.tools,
        images={digest: picture for digest, picture in held.items() if picture is not None},
    )


def export_json(chat: Chat, pinned: bool = False, pictures: Pictures = _no_pictures) -> str:
    """The chat as one JSON file, with the bytes of its images that `pictures` gives."""
    return msgspec.json.format(msgspec.json.encode(_exported(chat, pinned, pictures)).decode(), indent=2)


def export_all_json(library: Library, pictures: Pictures = _no_pictures) -> str:
    """Every listed chat, in list order, as one JSON file."""
    chats = [_exported(c, c.id in library.pinned, pictures) for c in library.ordered]
    data = ExportedLibrary(format=EXPORT_ALL_FORMAT, chats=chats)
    return msgspec.json.format(msgspec.json.encode(data).decode(), indent=2)


def _chat_from(data: ExportedChat, chat_id: str, updated: float) -> Chat:
    """The chat of one export entry (its pin is the entry's `pinned`)."""
    if data.format != EXPORT_FORMAT:
        raise ValueError(NOT_OURS)
    chat = Chat(
        turns=tuple(data.turns),
        id=chat_id,
        title=data.title,
        updated=updated,
        model=data.model,
        forks=data.forks,
        system=data.system,
        preset=data.preset,
        tools=data.tools,
    )
    return restore(chat)


def import_json(text: str, chat_id: str, now: float) -> Chat:
    """A chat from a one-chat export, dated `now`; raises ValueError with a readable reason."""
    try:
        data = msgspec.json.decode(text, type=ExportedChat)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(NOT_OURS) from exc
    return _chat_from(data, chat_id, now)


class _Format(Struct):
    format: str


def import_many(text: str, new_id: Callable[[], str], now: float) -> Library:
    """The chats of an export, as a library to `add`: every chat of an all-chats export (each
    keeping its date and pin), or the one chat of a one-chat export (dated `now`), in JSON or
    Markdown. Each keeps the id it was exported with; one without (Markdown, older exports) gets
    `new_id()`. ValueError, saying so in a sentence, for a file that is not one of these."""
    if not text.lstrip().startswith("{"):
        if not is_markdown_export(text):
            raise ValueError(NOT_OURS)
        return Library(chats=(import_markdown(text, new_id(), now),))
    try:
        kind = msgspec.json.decode(text, type=_Format).format
        if kind == EXPORT_FORMAT:
            one = msgspec.json.decode(text, type=ExportedChat)
            chat = _chat_from(one, one.id or new_id(), now)
            return Library(chats=(chat,), pinned=frozenset({chat.id}) if one.pinned else frozenset())
        data = msgspec.json.decode(text, type=ExportedLibrary)
        if kind != EXPORT_ALL_FORMAT:
            raise ValueError(NOT_OURS)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(NOT_OURS) from exc
    pairs = [(_chat_from(c, c.id or new_id(), c.updated or now), c.pinned) for c in data.chats if c.turns]
    return Library(chats=tuple(c for c, _ in pairs), pinned=frozenset(c.id for c, pin in pairs if pin))


def pictures_in(text: str) -> dict[str, Picture]:
    """The images an export (of one chat or all) carries, by digest; an image whose bytes do not
    match its digest (an edited file) is left out, so no chat shows another's picture."""
    try:
        kind = msgspec.json.decode(text, type=_Format).format
        if kind == EXPORT_ALL_FORMAT:
            entries = msgspec.json.decode(text, type=ExportedLibrary).chats
        else:
            entries = [msgspec.json.decode(text, type=ExportedChat)]
    except (msgspec.DecodeError, msgspec.ValidationError, binascii.Error):
        return {}
    return {d: p for e in entries for d, p in e.images.items() if digest_of(p.data) == d}


def filename_for(chat: Chat, ext: str) -> str:
    stem = "".join(ch if ch.isalnum() else "-" for ch in title_of(chat).lower()).strip("-")
    return f"{'-'.join(filter(None, stem.split('-')))[:40] or 'chat'}.{ext}"
