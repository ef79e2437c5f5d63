"""Continue: the model goes on with an answer that stopped short, on the real default model, and
the new text starts where the answer stopped (`continue` on /api/converse; the engine's `extend`).

A count the model keeps going on (greedy, no repeat penalty) makes "where it stopped" exact: the
answer cut at 12 tokens and continued for 12 more is the answer of 24 tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.default_model import default_model_path
from server.engines.llama_cpp_engine import LlamaCppEngine
from server.sampling import Sampling
from server.settings import Settings
from tests.harness import COUNT, answer_of, chat, converse, text_pieces
from wire.types import Message

GREEDY = {"temperature": 0.0, "repeat_penalty": 1.0, "seed": 1}
# Gemma's own turn format, as its GGUFs carry it (the default model is the base model: it has none).
GEMMA = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m.role == 'assistant' else m.role }}\n"
    "{{ m.content }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def ask(url: str, body: dict[str, Any]) -> tuple[str, str]:
    """The answer's text and its stop reason."""
    status, events = converse(url, body)
    assert status == 200, events
    done = [data for name, data in events if name == "done"]
    assert done, events
    return answer_of(events), done[0]["stop_reason"]


def continued(so_far: str, **params: Any) -> dict[str, Any]:
    body = chat(COUNT, **params)
    body["conversation"]["messages"].append({"user": False, "text": so_far})
    return {**body, "continue": True}


def test_a_continued_answer_starts_where_it_stopped(fresh_server: str) -> None:
    whole, _ = ask(fresh_server, chat(COUNT, max_tokens=24, **GREEDY))
    first, reason = ask(fresh_server, chat(COUNT, max_tokens=12, **GREEDY))
    assert reason == "length" and whole.startswith(first) and len(first) < len(whole)
    rest, _ = ask(fresh_server, continued(first, max_tokens=12, **GREEDY))
    assert rest and first + rest == whole


@pytest.mark.parametrize(
    ("messages", "tools", "type"),
    [
        ([{"user": True, "text": "Hi"}], [], "invalid_request"),  # no answer to go on with
        ([{"user": False, "text": "Hello"}], [], "invalid_request"),  # no user's message before it
        ([{"user": True, "text": "Hi"}, {"user": False, "text": " "}], [], "invalid_request"),  # an empty answer
        ([{"user": True, "text": "Hi"}, {"user": False, "text": "Hello"}, {"user": True, "text": "And?"}], [],
         "invalid_request"),  # the user's message last
        ([{"user": True, "text": "Hi"}, {"user": False, "text": "Hello"}],
         [{"name": "f", "description": "", "parameters": {"type": "object"}}], "unsupported_parameter"),
    ],
)
def test_continue_is_refused_without_an_answer_to_go_on_with(
    live_server: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]], type: str
) -> None:
    body = {"conversation": {"messages": messages}, "continue": True, "tools": tools}
    status, events = converse(live_server, body)
    assert status == 400 and events[0][1]["error"]["type"] == type, events


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppEngine]:
    """The default model under a chat template of its own (Gemma's turns)."""
    file = Path(tmp_path_factory.mktemp("gemma")) / "gemma.jinja"
    file.write_text(GEMMA)
    engine = LlamaCppEngine(
        default_model_path(), n_ctx=2048, kv_pool=4096, parallel=1, threads=1, n_gpu_layers=0,
        cache_ram_mib=0, prompt_template=str(file), speculative="off", speculative_draft=Settings.speculative_draft,
    )
    yield engine
    engine.close()


def test_with_a_chat_template_the_answer_so_far_is_left_open_and_goes_on(gemma: LlamaCppEngine) -> None:
    asked = [Message(True, COUNT)]

    def answer(messages: list[Message], tokens: int, so_far: str = "") -> str:
        prompt = gemma.render(messages, None)
        if so_far:
            prompt = gemma.extend(prompt, so_far)
        return "".join(text_pieces(gemma.stream(prompt, Sampling(max_tokens=tokens, temperature=0.0))))

    whole = answer(asked, 24)
    first = answer(asked, 12)
    assert whole.startswith(first) and len(first) < len(whole)
    # The answer's turn stays open (no end of turn after it), as llama.cpp itself renders a chat
    # that ends in the assistant's message: the model writes on in the same turn.
    opened = gemma.extend(gemma.render(asked, None), first)
    assert opened.payload == gemma.render([*asked, Message(False, first)], None).payload
    assert first + answer(asked, 12, first) == whole
