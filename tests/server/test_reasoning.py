"""Thoughts apart from the answer: the splitter on any cut of a text, and the real server on a
tiny thinking model (its template opens `<think>` in the generation prompt and the model writes
its thoughts, `</think>`, then its answer) through both front doors, with no fake anywhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.reasoning import CLOSE, OPEN, Part, Splitter, opens_thinking
from tests import tinymodels as tm
from tests.harness import answer_of, chat, converse, cut, iter_sse, start_server, start_thinking_server, stop_server


def merged(pieces: list[Part]) -> list[Part]:
    """Consecutive pieces of one kind as one (how a reader sees them)."""
    out: list[Part] = []
    for thought, text in pieces:
        if out and out[-1][0] == thought:
            out[-1] = (thought, out[-1][1] + text)
        else:
            out.append((thought, text))
    return out


def run(pieces: list[str], thinking: bool = False) -> list[Part]:
    split = Splitter(thinking)
    out = [p for piece in pieces for p in split.feed(piece)]
    return merged(out + split.flush())


# Text built from tag fragments, whitespace and words, so that partial and near-miss tags are common.
fragments = st.sampled_from(
    ["<", "</", "<think", "<think>", "</think>", "think>", "</thi", "nk>", ">", " ", "\n", "\n\n", "Paris",
     " is", "é", "中文", "🙂", "<b>", "</b>", "t"]
)
texts = st.lists(fragments | st.text(max_size=5), max_size=25).map("".join)


@given(cut(texts), st.booleans())
@example(("</think> is", ["</think>", " is"]), False)  # found by hypothesis: a stray tag, then a blank, at the start
def test_any_cut_of_a_text_splits_as_the_whole_text_does(case: tuple[str, list[str]], thinking: bool) -> None:
    text, pieces = case
    whole = run([text], thinking)
    assert run(pieces, thinking) == whole
    for thought, part in whole:
        assert part == part.strip() and part  # no blank pieces, no blank edges
        assert CLOSE not in part
        if not thought:
            assert OPEN not in part
    assert whole == reference(text, thinking)


def reference(text: str, thinking: bool) -> list[Part]:
    """The split of a whole text, written plainly: blocks between tags, each without blank edges
    (a stray `</think>` in the answer is only dropped, and the blank before it)."""
    blocks: list[tuple[bool, str]] = []
    while True:
        tags = [CLOSE] if thinking else [OPEN, CLOSE]
        hits = sorted((text.find(tag), tag) for tag in tags if tag in text)
        if not hits:
            blocks.append((thinking, text))
            break
        at, tag = hits[0]
        before, text = text[:at], text[at + len(tag) :]
        if tag == CLOSE and not thinking:  # stray: the answer goes on
            text = before.rstrip() + text
            continue
        blocks.append((thinking, before))
        thinking = tag == OPEN
    return merged([(t, b.strip()) for t, b in blocks if b.strip()])


@pytest.mark.parametrize(
    ("pieces", "thinking", "expected"),
    [
        (["Paris is lovely."], False, [(False, "Paris is lovely.")]),
        (["<think>\nHm.\n</think>\n\nParis."], False, [(True, "Hm."), (False, "Paris.")]),
        # a template that opened the block: the answer starts inside it
        (["Hm, France.", "\n</think>", "\n\n", "Paris."], True, [(True, "Hm, France."), (False, "Paris.")]),
        # tags cut anywhere are held back until they complete
        (["<th", "ink>", "Hm.</", "thi", "nk", ">Paris."], False, [(True, "Hm."), (False, "Paris.")]),
        # a partial tag at the very end is text after all; so is a tag-like word that is not one
        (["Use <b> and <thi"], False, [(False, "Use <b> and <thi")]),
        # a stray </think> never shows in the answer; <think> in thoughts is just text
        (["Paris.</think> Yes."], False, [(False, "Paris. Yes.")]),
        (["a <think> b</think>c"], True, [(True, "a <think> b"), (False, "c")]),
        # thinking until the answer budget ran out: all thoughts
        (["Let me see", " more"], True, [(True, "Let me see more")]),
    ],
)
def test_examples(pieces: list[str], thinking: bool, expected: list[Part]) -> None:
    assert run(pieces, thinking) == expected


def test_thoughts_stream_as_they_come_and_only_a_possible_tag_waits() -> None:
    split = Splitter(thinking=True)
    assert split.feed("I weigh") == [(True, "I weigh")]
    assert split.feed(" it </th") == [(True, " it")]
    assert split.feed("ink>\n") == []  # the blank after </think> does not start the answer
    assert split.feed("Paris") == [(False, "Paris")]


@pytest.mark.parametrize(
    ("rendered", "thinking"),
    [("<|im_start|>assistant\n<think>\n", True), ("<start_of_turn>model\n", False), ("<think>x</think>\n", False)],
)
def test_a_prompt_opens_thinking_when_its_template_leaves_a_think_block_open(rendered: str, thinking: bool) -> None:
    assert opens_thinking(rendered) is thinking


def test_reasoning_reported_apart_is_split_the_same() -> None:
    """llama.cpp's and vLLM's `reasoning_content` deltas, then `content` ones."""
    split = Splitter()
    parts = split.feed_thought("Hm") + split.feed_thought(", France. ") + split.feed("\n\nParis")
    parts += split.feed(" is lovely.") + split.flush()
    assert merged(parts) == [(True, "Hm, France."), (False, "Paris is lovely.")]
    split = Splitter()
    assert split.feed("Plain.") + split.flush() == [(False, "Plain.")]


# --- the real server on a tiny thinking model ------------------------------------------------------


@pytest.fixture(scope="module")
def thinking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_thinking_server(tmp_path_factory.mktemp("thinking"))
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same model on a template with no place for thoughts (Gemma's shape)."""
    path = tmp_path_factory.mktemp("plain") / "plain.gguf"
    tm.write_gguf(path, "f32", continuation=tm.ANSWER, chat_template=tm.CHAT_TEMPLATE)
    proc, url = start_server("--model", str(path), "--n-ctx", "2048", env={"THREADS": "1"})
    yield url
    stop_server(proc)


@pytest.mark.parametrize("template", [tm.CHAT_TEMPLATE, None], ids=["chat template without thoughts", "seed"])
def test_a_model_whose_prompt_knows_no_thoughts_keeps_think_tags_as_answer_text(
    tmp_path: Path, template: str | None
) -> None:
    """A model writing "<think>" in its answer (code, say) where nothing makes it a thinking model."""
    written = "Wrap it in <think>like this</think> and go on."
    path = tmp_path / "writes-tags.gguf"
    tm.write_gguf(path, "f32", continuation=written, chat_template=template)
    proc, url = start_server("--model", str(path), "--n-ctx", "2048", env={"THREADS": "1"})
    try:
        status, events = converse(url, chat("How do I mark thoughts?", temperature=0, max_tokens=40))
    finally:
        stop_server(proc)
    assert status == 200 and [n for n, _ in events].count("thought") == 0
    assert answer_of(events).startswith(written)


def test_the_real_engine_streams_thoughts_then_the_answer(thinking_server: str) -> None:
    status, events = converse(thinking_server, chat("What is the capital of France?", temperature=0, max_tokens=40))
    assert status == 200
    names = [name for name, _ in events]
    assert names[0] == "answer"  # its id, for a page that comes back to it
    names = names[1:]
    assert names[0] == "thought" and names[-1] == "done"
    assert names.index("token") > max(i for i, n in enumerate(names) if n == "thought")  # thoughts come first
    assert "".join(d["text"] for n, d in events if n == "thought") == tm.THOUGHTS
    assert answer_of(events) == tm.ANSWER  # no tags, no leading blank
    assert events[-1][1]["stop_reason"] == "stop"


def prompt_tokens(url: str, *messages: dict[str, object]) -> int:
    body = {"conversation": {"messages": list(messages)}, "params": {"temperature": 0, "max_tokens": 1}}
    status, events = converse(url, body)
    assert status == 200 and events[-1][0] == "done", events
    return int(events[-1][1]["prompt_tokens"])


def n_tokens(text: str) -> int:
    """Tokens of prompt text in these models: a byte token each byte, a space written as `▁`."""
    return len(tm.byte_tokens(text.replace(" ", tm.SPM_SPACE)))


def history(thoughts: str | None) -> list[dict[str, object]]:
    answer: dict[str, object] = {"user": False, "text": "Paris."}
    if thoughts is not None:
        answer["thoughts"] = thoughts
    return [{"user": True, "text": "Capital of France?"}, answer, {"user": True, "text": "And of Italy?"}]


def test_thoughts_sent_back_reach_the_model_only_where_its_template_shows_them(
    thinking_server: str, plain_server: str
) -> None:
    thoughts = "France, so Paris."
    # The thinking template shows earlier thoughts in their turn: the prompt grows by them.
    without = prompt_tokens(thinking_server, *history(None))
    grown = prompt_tokens(thinking_server, *history(thoughts)) - without
    assert grown == n_tokens(f"<think>\n{thoughts}\n</think>\n")
    # Gemma's template has no place for them: the prompt is the same.
    assert prompt_tokens(plain_server, *history(thoughts)) == prompt_tokens(plain_server, *history(None))


def test_a_request_without_thoughts_is_as_before_and_bad_thoughts_are_refused(thinking_server: str) -> None:
    status, events = converse(thinking_server, {"conversation": {"messages": history(123)}})  # type: ignore[arg-type]  # a bad type on purpose
    assert status == 400 and "thoughts" in events[0][1]["error"]["message"]


def test_the_openai_front_door_sends_thoughts_as_reasoning_content(thinking_server: str) -> None:
    body = {"messages": [{"role": "user", "content": "Capital of France?"}], "temperature": 0, "max_tokens": 40}
    reply = httpx.post(f"{thinking_server}/v1/chat/completions", json=body, timeout=60).json()
    message = reply["choices"][0]["message"]
    assert message == {"role": "assistant", "content": tm.ANSWER, "reasoning_content": tm.THOUGHTS}

    with httpx.stream("POST", f"{thinking_server}/v1/chat/completions", json={**body, "stream": True}) as response:
        deltas = [json.loads(data)["choices"][0]["delta"] for _, data in iter_sse(response) if data != "[DONE]"]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == tm.THOUGHTS
    assert "".join(d.get("content", "") for d in deltas) == tm.ANSWER
    first_content = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert all("reasoning_content" not in d for d in deltas[first_content:])


def test_the_openai_front_door_takes_reasoning_content_back(thinking_server: str) -> None:
    def count(assistant: dict[str, str]) -> int:
        messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", **assistant},
                    {"role": "user", "content": "Bye"}]
        body = {"messages": messages, "temperature": 0, "max_tokens": 1}
        return int(httpx.post(f"{thinking_server}/v1/chat/completions", json=body, timeout=60).json()
                   ["usage"]["prompt_tokens"])

    grown = count({"content": "Hello", "reasoning_content": "Be kind."}) - count({"content": "Hello"})
    assert grown == n_tokens("<think>\nBe kind.\n</think>\n")

