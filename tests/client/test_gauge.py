"""The context gauge's numbers and the turns it marks as dropped (client.gauge), without a DOM."""

from __future__ import annotations

from client.components.chat_area import BUBBLE_DROPPED, view_of
from client.components.context_gauge import ContextGauge
from client.gauge import DROPPED_LABEL, Gauge, context_size, dropped, gauge_of
from client.state import Chat, Turn, finish, submit
from wire.events import DoneEvent
from wire.types import ModelInfo, ModelList

MODELS = ModelList(
    default="small.gguf",
    models=[ModelInfo(name="small.gguf", usable=True, n_ctx=512), ModelInfo(name="big.gguf", usable=True, n_ctx=8192)],
)


def done(prompt: int, completion: int, truncated: int = 0, model: str = "") -> DoneEvent:
    return DoneEvent("stop", prompt, completion, None, None, truncated_turns=truncated, model=model)


def answered(chat: Chat, question: str, event: DoneEvent, answer: str = "an answer") -> Chat:
    chat = submit(chat, question)
    chat = Chat(turns=chat.turns[:-1] + (Turn(user=False, text=answer, status="streaming"),), model=chat.model)
    return finish(chat, event)


def test_no_gauge_before_an_answer_is_counted() -> None:
    assert gauge_of(Chat(), MODELS) is None
    assert gauge_of(submit(Chat(), "hi"), MODELS) is None  # pending: nothing counted yet
    assert dropped(Chat()) == frozenset()


def test_gauge_is_the_last_answers_prompt_plus_completion_out_of_its_models_context() -> None:
    chat = answered(Chat(), "one", done(40, 10))
    assert chat.turns[-1].tokens == 50
    assert gauge_of(chat, MODELS) == Gauge(50, 512)
    chat = answered(chat, "two", done(90, 20))
    assert gauge_of(chat, MODELS) == Gauge(110, 512)  # the newest answer, not a sum
    gauge = gauge_of(chat, MODELS)
    assert gauge is not None and gauge.text == "110 / 512 tokens"
    # The model that wrote the answer decides the size; then the chat's own; then the server's default.
    assert gauge_of(answered(Chat(), "q", done(5, 5, model="big.gguf")), MODELS) == Gauge(10, 8192)
    assert context_size(Chat(model="big.gguf"), MODELS) == 8192
    assert context_size(Chat(), MODELS) == 512
    assert context_size(Chat(), None) == 0 and context_size(Chat(model="gone.gguf"), MODELS) == 0


def test_gauge_numbers_when_the_size_is_unknown_or_overfull() -> None:
    assert Gauge(7, 0).text == "7 tokens" and Gauge(7, 0).fraction == 0.0
    assert Gauge(1234, 4096).text == "1,234 / 4,096 tokens"
    assert Gauge(600, 512).fraction == 1.0 and Gauge(128, 512).fraction == 0.25


def test_the_first_truncated_messages_of_the_last_request_are_marked_dropped() -> None:
    chat = answered(Chat(), "one", done(200, 50))
    chat = answered(chat, "two", done(400, 50))
    assert dropped(chat) == frozenset()
    chat = answered(chat, "three", done(450, 50, truncated=3))
    # Sent: one, answer, two, answer, three; the oldest three (turns 0, 1, 2) were left out.
    assert dropped(chat) == {0, 1, 2}
    # A new question in flight: the marks stay those of the last counted answer.
    assert dropped(submit(chat, "four")) == {0, 1, 2}


def test_failed_or_empty_answers_are_not_counted_among_the_dropped_messages() -> None:
    failed = Turn(user=False, text="Error", status="error")
    chat = Chat(turns=(Turn(user=True, text="a"), failed, Turn(user=True, text="b")))
    chat = Chat(turns=chat.turns + (Turn(user=False, text="answer b"),))
    chat = answered(chat, "c", done(300, 10, truncated=2))
    # Sent: a, b, answer b, c (the failed answer never is); the oldest two are "a" and "b".
    assert dropped(chat) == {0, 2}


def test_the_server_count_is_kept_with_the_chat() -> None:
    from client import library

    chat = answered(Chat(id="c"), "one", done(40, 2))
    assert library.import_json(library.export_json(chat), "c", 0.0).turns[-1].tokens == 42


def test_a_dropped_turn_is_greyed_and_labelled() -> None:
    user = view_of(Turn(user=True, text="q"), dropped=True)
    model = view_of(Turn(user=False, text="a", note="5 tokens"), dropped=True)
    assert user.dropped and user.note == DROPPED_LABEL and BUBBLE_DROPPED in user.bubble_class
    assert "bg-blue-600" not in user.bubble_class
    assert model.note == f"{DROPPED_LABEL} · 5 tokens" and BUBBLE_DROPPED in model.bubble_class
    assert not view_of(Turn(user=True, text="q")).dropped


class El:
    def __init__(self) -> None:
        self.hidden = True
        self.attrs: dict[str, str] = {}
        self.textContent = ""
        self.max: float = 1
        self.value: float = 0

    def setAttribute(self, name: str, value: str) -> None:  # noqa: N802  (the DOM's name)
        self.attrs[name] = value


def test_the_meter_shows_used_out_of_size_and_hides_without_a_count() -> None:
    field, meter, text = El(), El(), El()
    gauge = ContextGauge(field, meter, text)
    gauge.render(Gauge(110, 512))
    assert not field.hidden and (meter.value, meter.max) == (110, 512) and text.textContent == "110 / 512 tokens"
    assert meter.attrs["aria-valuetext"] == "110 / 512 tokens"
    gauge.render(None)
    assert field.hidden


def test_stepped_drops_keep_the_marks_until_the_next_step() -> None:
    """Past the context the server drops old turns in steps: the same count for several answers
    (the marks stay on the same messages as the chat grows), then a larger one at the next step."""
    chat = Chat()
    marks = []
    for i, truncated in enumerate((0, 0, 2, 2, 2, 6, 6)):
        chat = answered(chat, f"question {i}", done(400, 50, truncated=truncated))
        marks.append(dropped(chat))
    assert marks[0] == marks[1] == frozenset()
    assert marks[2] == marks[3] == marks[4] == {0, 1}
    assert marks[5] == marks[6] == frozenset(range(6))
    for index, turn in enumerate(chat.turns):  # each message shown as left out, or not
        view = view_of(turn, last=index == len(chat.turns) - 1, dropped=index in marks[-1])
        assert view.dropped == (index < 6) and view.note.startswith(DROPPED_LABEL) == (index < 6)
