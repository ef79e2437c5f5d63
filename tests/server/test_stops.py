from hypothesis import given
from hypothesis import strategies as st

from server.prompt import STOP_MARKERS
from server.stops import StopFilter
from tests.harness import cut


def reference(text: str) -> str:
    """What the whole answer must be, computed from the whole text at once."""
    hits = [i for i in (text.find(m) for m in STOP_MARKERS) if i >= 0]
    if hits:
        return text[: min(hits)].strip()
    longest = max(
        (k for k in range(1, len(text) + 1) if any(m.startswith(text[-k:]) for m in STOP_MARKERS)),
        default=0,
    )
    return text[: len(text) - longest].strip()


def run(pieces: list[str]) -> tuple[list[str], StopFilter]:
    stop = StopFilter(STOP_MARKERS)
    out = [stop.feed(p) for p in pieces]
    return out, stop


# Text built from marker fragments, whitespace and ordinary words, so that near-misses are common.
fragments = st.sampled_from(
    ["#", "##", "###", " ", "\n", "### ", "Hu", "Human", "### Hu", "man", "Assist", "ant", ":",
     "### Human", "### Assistant", "Paris", " is", "é", "中文", "🙂", "H", "A"]
)
texts = st.lists(fragments | st.text(max_size=6), max_size=25).map("".join)


@given(cut(texts))
def test_any_split_gives_the_whole_text_answer(case: tuple[str, list[str]]) -> None:
    text, pieces = case
    out, _ = run(pieces)
    answer = "".join(out)
    assert answer == reference(text)
    for marker in STOP_MARKERS:
        assert marker not in answer
    # What was held back and dropped is only whitespace and the start of a marker that the text
    # was cut short in (unless a whole marker came).
    assert text.lstrip().startswith(answer)
    rest = text.lstrip()[len(answer) :].strip()
    assert not rest or any(m in text for m in STOP_MARKERS) or any(m.startswith(rest) for m in STOP_MARKERS)


@given(cut(texts))
def test_stops_exactly_when_a_marker_completes(case: tuple[str, list[str]]) -> None:
    text, pieces = case
    _, stop = run(pieces)
    assert stop.stopped == any(m in text for m in STOP_MARKERS)


def test_marker_split_one_character_at_a_time_is_never_shown() -> None:
    out, stop = run(list("Paris.\n### Human: and more"))
    assert "".join(out) == "Paris."
    assert stop.stopped


def test_held_text_is_released_when_it_is_not_a_marker() -> None:
    stop = StopFilter(STOP_MARKERS)
    assert stop.feed("Use C") == "Use C"
    assert stop.feed("##") == ""
    assert stop.feed("#") == ""
    assert stop.feed(" Heading") == "### Heading"
    assert not stop.stopped


def test_text_after_the_stop_is_ignored() -> None:
    stop = StopFilter(STOP_MARKERS)
    assert stop.feed("Yes### Assistant:") == "Yes"
    assert stop.feed("more") == ""


def test_the_marker_that_stopped_the_text_is_known() -> None:
    f = StopFilter(["###", "03", "103"])
    assert f.matched is None
    assert f.feed("101, 102, 1") == "101, 102,"
    assert f.feed("03, 104") == "" and f.stopped
    assert f.matched == "103"  # the one that starts first, not the first listed
    early = StopFilter(["b", "a"])
    early.feed("xab")
    assert early.matched == "a"
