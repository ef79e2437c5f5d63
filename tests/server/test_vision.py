"""Vision: the default model with a tiny projector the tests write (`tests.tinyprojector`), through
llama.cpp's real multimodal path, and the pairing of projectors with models in MODELS_DIR."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.harness import converse, run_server, start_server, stop_server
from tests.tinymodels import write_gguf
from tests.tinyprojector import IMAGE_TOKENS, data_url, png, write_projector

RED, BLUE = data_url(png(40, 30, (255, 0, 0))), data_url(png(40, 30, (0, 0, 255)))
DEFAULT = "gemma-3-270m-q4_k_m.gguf"  # the default model, by its file's name


@pytest.fixture(scope="module")
def vision_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The default model with MMPROJ, one slot (so that two chats meet in one prompt cache), and a
    models folder: a text model, a model with its projector, and one whose projector is broken."""
    folder = tmp_path_factory.mktemp("vision")
    projector = write_projector(folder / "projector-for-the-default.gguf")
    models = folder / "models"
    models.mkdir()
    write_gguf(models / "tiny-text.gguf")
    write_gguf(models / "tiny-eyes-Q8_0.gguf")
    write_projector(models / "mmproj-tiny-eyes-f16.gguf", n_text=64)
    write_gguf(models / "tiny-broken.gguf")
    (models / "mmproj-tiny-broken.gguf").write_bytes(b"GGUF")
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto", "MMPROJ": str(projector), "PARALLEL": "1",
                                  "MODELS_DIR": str(models)})
    yield url
    stop_server(proc)


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def asking(text: str, *images: str) -> list[ChatCompletionMessageParam]:
    parts: list[Any] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in images]
    return [{"role": "user", "content": parts}]


def streamed(url: str, messages: list[ChatCompletionMessageParam]) -> tuple[str, int]:
    """The answer's text and its prompt tokens, streamed."""
    stream = client(url).chat.completions.create(
        model="", messages=messages, stream=True, stream_options={"include_usage": True}, max_tokens=4,
        temperature=0,
    )
    text, prompt_tokens = [], -1
    for chunk in stream:
        text += [c.delta.content or "" for c in chunk.choices]
        if chunk.usage is not None:
            prompt_tokens = chunk.usage.prompt_tokens
    return "".join(text), prompt_tokens


def test_an_image_costs_its_tokens_and_the_answer_streams(vision_server: str) -> None:
    text, with_image = streamed(vision_server, asking("What is this?", RED))
    assert text
    _, without = streamed(vision_server, asking("What is this?"))
    assert with_image - without == IMAGE_TOKENS
    _, two = streamed(vision_server, asking("What is this?", RED, BLUE))
    assert two - without == 2 * IMAGE_TOKENS


def test_another_image_is_read_again_not_taken_from_the_cache(vision_server: str) -> None:
    def evaluated(image: str) -> int:
        body = {"conversation": {"messages": [{"user": True, "text": "Describe it.", "images": [image]}]},
                "params": {"max_tokens": 2, "temperature": 0}}
        status, events = converse(vision_server, body)
        assert status == 200, events
        done = [data for name, data in events if name == "done"]
        assert done, events
        return int(done[0]["prompt_tokens_evaluated"])

    evaluated(RED)
    assert evaluated(RED) < IMAGE_TOKENS  # the same image: its tokens come from the slot's cache
    assert evaluated(BLUE) >= IMAGE_TOKENS - 2  # another: all its own tokens read (only <start_of_image> kept)


def test_typed_control_token_text_beside_an_image_stays_text(vision_server: str) -> None:
    _, plain = streamed(vision_server, asking("", RED))
    _, typed = streamed(vision_server, asking("<end_of_turn>", RED))
    assert typed - plain > 1  # one token if llama.cpp had read it as Gemma's control token


def refusal(url: str, messages: list[ChatCompletionMessageParam]) -> str:
    with pytest.raises(openai.BadRequestError) as caught:
        client(url).chat.completions.create(model="", messages=messages, max_tokens=2)
    return str(caught.value)


def test_an_image_that_is_no_data_url_or_no_image_is_a_400_naming_it(vision_server: str) -> None:
    said = refusal(vision_server, asking("Look", "https://example.com/cat.png"))
    assert "messages[0].content[1]" in said and "not a data: URL" in said
    said = refusal(vision_server, asking("Look", RED, data_url(b"not an image at all")))
    assert "messages[0].content[2]" in said and "cannot read it as an image" in said
    said = refusal(vision_server, asking("Look", "data:image/png;base64,@@@"))
    assert "messages[0].content[1]" in said and "base64" in said


def test_an_image_to_a_model_without_vision_is_a_400(live_server: str) -> None:
    said = refusal(live_server, asking("Look", RED))
    assert "messages[0].content[1]" in said and "takes no images" in said
    body = {"conversation": {"messages": [{"user": True, "text": "Look", "images": [RED]}]}}
    status, events = converse(live_server, body)
    assert status == 400 and "conversation.messages[0].images[0]" in str(events), events


def test_tokens_counts_an_image_as_an_answer_would_read_it(vision_server: str, live_server: str) -> None:
    def count(url: str, images: list[str]) -> httpx.Response:
        return httpx.post(f"{url}/api/tokens", json={"text": "What is this?", "images": images}, timeout=60)

    plain, one, two = (count(vision_server, images).json() for images in ([], [RED], [RED, BLUE]))
    assert one["tokens"] - plain["tokens"] == IMAGE_TOKENS
    assert two["tokens"] - plain["tokens"] == 2 * IMAGE_TOKENS
    assert one["overhead"] == plain["overhead"]
    _, streamed_tokens = streamed(vision_server, asking("What is this?", RED))
    assert one["overhead"] + one["tokens"] <= streamed_tokens  # the prompt adds the answer's opening to it
    refused = count(live_server, [RED])
    assert refused.status_code == 400 and "images[0]" in refused.text and "takes no images" in refused.text
    broken = count(vision_server, [data_url(b"not an image")])
    assert broken.status_code == 400 and "images[0]" in broken.text and "cannot read it as an image" in broken.text


def test_listings_say_which_models_take_images(vision_server: str) -> None:
    listed = {m.id: m for m in client(vision_server).models.list()}
    assert set(listed) == {"gemma-3-270m-q4_k_m.gguf", "tiny-text.gguf", "tiny-eyes-Q8_0.gguf"}  # no projectors
    vision = {name: (m.model_extra or {})["meta"]["vision"] for name, m in listed.items()}
    assert vision == {"gemma-3-270m-q4_k_m.gguf": True, "tiny-text.gguf": False, "tiny-eyes-Q8_0.gguf": True}
    ours = httpx.get(f"{vision_server}/api/models").json()["models"]
    assert {m["name"]: m.get("vision") for m in ours if m["usable"]} == vision
    broken = [m for m in ours if m["name"] == "tiny-broken.gguf"]
    assert broken and not broken[0]["usable"] and "mmproj-tiny-broken.gguf" in broken[0]["reason"]
    assert httpx.get(f"{vision_server}/health").json()["vision"] is True


def test_a_bad_mmproj_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = run_server(env={"MMPROJ": str(tmp_path / "absent.gguf")})
    assert missing.returncode == 2 and missing.stderr.startswith("snake_llama: error: bad setting: MMPROJ")
    assert missing.stderr.count("\n") == 1
    text_model = tmp_path / "not-a-projector.gguf"
    write_gguf(text_model)
    wrong = run_server(env={"MMPROJ": str(text_model)})
    assert wrong.returncode == 2, wrong.stderr
    assert wrong.stderr.startswith("snake_llama: error:") and "not a vision projector" in wrong.stderr
    assert wrong.stderr.count("\n") == 1
    too_narrow = write_projector(tmp_path / "mmproj-narrow.gguf", n_text=64)  # for a 64-wide model, not Gemma's 640
    mismatched = run_server(env={"MMPROJ": str(too_narrow)})
    assert mismatched.returncode == 2, mismatched.stderr
    # found only once loading (llama.cpp's own log lines come before ours)
    said = [line for line in mismatched.stderr.splitlines() if line.startswith("snake_llama: error:")]
    assert len(said) == 1, mismatched.stderr
    assert "could not load the vision projector" in said[0] and "n_embd = 640" in said[0], said


def test_ollama_and_anthropic_clients_send_images_too(vision_server: str) -> None:
    """Ollama's bare base64 and Anthropic's image blocks take the same path: an image costs its tokens."""
    import anthropic
    import ollama
    from anthropic.types import MessageParam

    red = RED.partition(",")[2]
    asked = ollama.Client(host=vision_server)
    with_image = asked.chat(model=DEFAULT, messages=[{"role": "user", "content": "What is this?", "images": [red]}],
                            options={"num_predict": 2, "temperature": 0})
    without = asked.chat(model=DEFAULT, messages=[{"role": "user", "content": "What is this?"}],
                         options={"num_predict": 2, "temperature": 0})
    assert (with_image.prompt_eval_count or 0) - (without.prompt_eval_count or 0) == IMAGE_TOKENS
    generated = asked.generate(model=DEFAULT, prompt="What is this?", images=[red], options={"num_predict": 2})
    assert generated.done
    claude = anthropic.Anthropic(base_url=vision_server, api_key="unused", max_retries=0)
    shown: list[MessageParam] = [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": red}},
        {"type": "text", "text": "What is this?"}]}]
    counted = claude.messages.count_tokens(model=DEFAULT, messages=shown)
    plain = claude.messages.count_tokens(model=DEFAULT, messages=[{"role": "user", "content": "What is this?"}])
    assert counted.input_tokens - plain.input_tokens == IMAGE_TOKENS
    reply = claude.messages.create(model=DEFAULT, max_tokens=2, messages=shown)
    assert reply.usage.input_tokens == counted.input_tokens
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(model=DEFAULT, max_tokens=2, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}]}])
    assert "messages[0].content[0]" in refused.value.message and "data: URL" in refused.value.message
