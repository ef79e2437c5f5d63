"""Tiny llama model files for tests, written with numpy in a few milliseconds.

Two layouts: legacy GGML v3 (`ggjt`: f32, f16, q8_0) and GGUF v3 (f32, f16).

The weights are shaped so that greedy decoding is known in advance:

* the attention output (`wo`) and feed-forward down (`w2`) projections are zero, so every block
  adds nothing and the residual stream at the end is the token's own embedding;
* each token's embedding is a scaled basis vector and the output matrix maps that vector onto
  exactly one successor, so the model is a fixed "next token" table.

The table: the continuation `CONTINUATION` (= `ANSWER` + `STOP_MARKER`) is split into pieces,
each piece is its own vocabulary token, each piece is followed by the next one, and the last
piece is followed by EOS. Every other token (all 256 byte tokens, BOS, UNK) is followed by the
first piece. So the greedy continuation of *any* prompt whose last token is not one of the
pieces is exactly `CONTINUATION`, then end of text. The seed's template ends in
`### Assistant:`, whose last token is the byte `:`, so any chat prompt built from it answers
`ANSWER` and then starts a `### Human:` turn that the server's stop filter must cut.

The piece tokens are at least three characters long and none of their prefixes is in the
vocabulary, so the tokenizer can never produce them from prompt text (it only merges pairs whose
concatenation is a token): prompts always tokenize to byte tokens, one per UTF-8 byte (GGUF first adds a
leading space and writes every space as `▁`, three bytes: three byte tokens).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

ANSWER = "Paris is lovely."
STOP_MARKER = "\n### Human:"
CONTINUATION = ANSWER + STOP_MARKER

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
BYTE_BASE = 3  # byte b is token BYTE_BASE + b, as in llama's sentencepiece vocabulary

N_EMBD = 64
N_HEAD = 4
N_MULT = 32
N_LAYER = 1
N_CTX = 32768  # the context length GGUF files declare: the tests may use any N_CTX up to it
RMS_EPS = 1e-6
MARGIN = 24.0  # logit of the chosen successor; every other logit is 0

# A chat template in Gemma's shape, with its turn tokens (control tokens of the vocabulary).
TURN_TOKENS = ("<start_of_turn>", "<end_of_turn>")
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

# A thinking model's template (DeepSeek-R1's shape): the generation prompt opens a think block,
# and an answer's earlier thoughts (`reasoning_content`) are shown again in its turn.
THINKING_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{% if m.reasoning_content %}<think>\n{{ m.reasoning_content }}\n</think>\n{% endif %}"
    "{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n<think>\n{% endif %}"
)
# A template with tools in Hermes 2 Pro's shape (llama.cpp knows it by `<tool_call>`), for a model
# that always answers with TOOL_CALL: what llama.cpp then parses into a call of `get_time`.
TOOL_TEMPLATE = (
    "{{ bos_token }}{% if tools %}<start_of_turn>system\nTools:{% for t in tools %} {{ t | tojson }}{% endfor %}\n"
    "Call one as <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call><end_of_turn>\n{% endif %}"
    "{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{\"name\": \"{{ c.function.name }}\"}</tool_call>"
    "{% endfor %}{% else %}{{ m['content'] }}{% endif %}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
TOOL_ARGUMENTS = {"zone": "UTC"}
# what a model on a template without tools writes to call `get_time` (server.engines.grammar_tools)
GRAMMAR_CALL = '{"tool": "get_time", "arguments": {"zone": "UTC"}}'
PYTHON_CALL = '{"tool": "python", "arguments": {"code": "print(6 * 7)"}}'  # the built-in tool, run in the page
TOOL_CALL = '<tool_call>\n{"name": "get_time", "arguments": {"zone": "UTC"}}\n</tool_call>'

THOUGHTS = "I weigh it up."
THINKING_ANSWER = f"{THOUGHTS}\n</think>\n\n{ANSWER}"  # what a model on THINKING_TEMPLATE writes

GGJT_FTYPES = {"f32": 0, "f16": 1, "q8_0": 7}  # llama file type in the GGJT header
GGML_TYPES = {"f32": 0, "f16": 1, "q8_0": 8}  # ggml tensor types
GGUF_FTYPES = {"f32": 0, "f16": 1}

SPM_SPACE = "\u2581"  # sentencepiece's visible space, used by GGUF vocabularies


def split_pieces(text: str) -> list[bytes]:
    """Split `text` into words with their leading whitespace, merging a word shorter than three
    characters into the next one: single characters are byte tokens (the table needs them for
    "every other token"), and a two-character token could come out of the tokenizer."""
    words = re.findall(r"\s*\S+|\s+", text)
    pieces: list[str] = []
    carry = ""
    for word in words:
        word = carry + word
        carry = ""
        if len(word) < 3:
            carry = word
        else:
            pieces.append(word)
    if carry:
        if pieces:
            pieces[-1] += carry
        else:
            pieces.append(carry)
    return [p.encode() for p in pieces]


class Spec:
    """The vocabulary and weights of one tiny model (format independent)."""

    def __init__(
        self,
        continuation: str | Sequence[bytes] = CONTINUATION,
        loop: bool = False,
        n_embd: int = N_EMBD,
        seed: int = 0,
        specials: Sequence[str] = (),
        end: str = "",
    ):
        """`specials` are control tokens added after the pieces; `end`, one of them, is what
        follows the last piece instead of EOS."""
        if isinstance(continuation, str):
            self.pieces = split_pieces(continuation)
        else:
            self.pieces = [bytes(p) for p in continuation]
        if len(set(self.pieces)) != len(self.pieces) or any(len(p) < 2 for p in self.pieces):
            raise ValueError(f"pieces must be distinct and at least two bytes long: {self.pieces}")
        self.text = b"".join(self.pieces)
        if len(self.pieces) + 1 > n_embd:
            raise ValueError("continuation has more pieces than embedding dimensions")
        self.n_embd = n_embd
        self.n_head = N_HEAD
        self.n_layer = N_LAYER
        self.n_ff = -(-(8 * n_embd // 3) // N_MULT) * N_MULT
        self.piece_ids = [BYTE_BASE + 256 + i for i in range(len(self.pieces))]
        self.specials = list(specials)
        self.special_ids = {text: BYTE_BASE + 256 + len(self.pieces) + i for i, text in enumerate(specials)}
        self.n_vocab = BYTE_BASE + 256 + len(self.pieces) + len(specials)
        self.successor = {t: self.piece_ids[0] for t in range(self.n_vocab)}
        for i, t in enumerate(self.piece_ids):
            last = self.piece_ids[0] if loop else self.special_ids[end] if end else EOS_ID
            self.successor[t] = self.piece_ids[i + 1] if i + 1 < len(self.piece_ids) else last
        self.tensors = self._weights(np.random.default_rng(seed))

    def _weights(self, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
        d, v, ff = self.n_embd, self.n_vocab, self.n_ff
        # Direction k < len(pieces) belongs to piece k; the last direction to every other token.
        # Scaled by sqrt(d) so that RMSNorm leaves the vector as it is.
        direction = np.full(v, d - 1)
        direction[self.piece_ids] = np.arange(len(self.piece_ids))
        embd = np.zeros((v, d), np.float32)
        embd[np.arange(v), direction] = np.sqrt(d)
        output = np.zeros((v, d), np.float32)
        for src, dst in self.successor.items():
            output[dst, direction[src]] = MARGIN / np.sqrt(d)
        ones = np.ones(d, np.float32)

        def rand(*shape: int) -> np.ndarray:
            return (rng.standard_normal(shape) * 0.02).astype(np.float32)

        tensors: list[tuple[str, np.ndarray]] = [("tok_embeddings", embd)]
        for n in range(self.n_layer):
            tensors += [
                (f"{n}.attention_norm", ones),
                (f"{n}.wq", rand(d, d)),
                (f"{n}.wk", rand(d, d)),
                (f"{n}.wv", rand(d, d)),
                (f"{n}.wo", np.zeros((d, d), np.float32)),
                (f"{n}.ffn_norm", ones),
                (f"{n}.w1", rand(ff, d)),
                (f"{n}.w2", np.zeros((d, ff), np.float32)),
                (f"{n}.w3", rand(ff, d)),
            ]
        tensors += [("norm", ones), ("output", output)]
        return tensors

    def greedy(self, last_token: int, n: int = 64) -> list[int]:
        """The token ids greedy decoding produces after `last_token` (up to and without EOS)."""
        out: list[int] = []
        t = last_token
        while len(out) < n:
            t = self.successor[t]
            if t == EOS_ID:
                break
            out.append(t)
        return out


GGJT_NAMES = {
    "tok_embeddings": "tok_embeddings.weight",
    "norm": "norm.weight",
    "output": "output.weight",
    "attention_norm": "attention_norm.weight",
    "wq": "attention.wq.weight",
    "wk": "attention.wk.weight",
    "wv": "attention.wv.weight",
    "wo": "attention.wo.weight",
    "ffn_norm": "ffn_norm.weight",
    "w1": "feed_forward.w1.weight",
    "w2": "feed_forward.w2.weight",
    "w3": "feed_forward.w3.weight",
}
GGUF_NAMES = {
    "tok_embeddings": "token_embd.weight",
    "norm": "output_norm.weight",
    "output": "output.weight",
    "attention_norm": "attn_norm.weight",
    "wq": "attn_q.weight",
    "wk": "attn_k.weight",
    "wv": "attn_v.weight",
    "wo": "attn_output.weight",
    "ffn_norm": "ffn_norm.weight",
    "w1": "ffn_gate.weight",
    "w2": "ffn_down.weight",
    "w3": "ffn_up.weight",
}


def _name(key: str, table: dict[str, str], block_prefix: str) -> str:
    if "." in key:
        n, rest = key.split(".", 1)
        return f"{block_prefix}{n}.{table[rest]}"
    return table[key]


def quantize_q8_0(a: np.ndarray) -> bytes:
    """ggml q8_0: blocks of 32 values, each an f16 scale then 32 int8."""
    flat = a.astype(np.float32).reshape(-1, 32)
    amax = np.abs(flat).max(axis=1)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0)
    q = np.round(flat * inv[:, None]).astype(np.int8)
    block = np.empty(flat.shape[0], dtype=[("d", "<f2"), ("qs", "i1", 32)])
    block["d"] = d.astype(np.float16)
    block["qs"] = q
    return block.tobytes()


def _tensor_bytes(a: np.ndarray, ftype: str) -> tuple[int, bytes]:
    """(ggml type, data) of a tensor; 1-D tensors (norms) stay f32 as llama.cpp expects."""
    if a.ndim == 1 or ftype == "f32":
        return GGML_TYPES["f32"], a.astype("<f4").tobytes()
    if ftype == "f16":
        return GGML_TYPES["f16"], a.astype("<f2").tobytes()
    if ftype == "q8_0":
        if a.shape[-1] % 32:
            raise ValueError("q8_0 needs rows that are multiples of 32")
        return GGML_TYPES["q8_0"], quantize_q8_0(a)
    raise ValueError(f"unsupported ftype {ftype!r}")


def _pad(f: IO[bytes], alignment: int = 32) -> None:
    f.write(b"\0" * (-f.tell() % alignment))


def write_ggjt(
    path: str | Path,
    ftype: str = "f16",
    continuation: str | Sequence[bytes] = CONTINUATION,
    loop: bool = False,
) -> Spec:
    """Write a legacy GGML v3 (`ggjt`) llama file; return its spec.

    `continuation` is the text the model answers (split into word tokens), or the answer's
    tokens as byte strings (two bytes or more each; they may split UTF-8 characters).
    `loop` makes the answer start over instead of ending (a model that never stops)."""
    if ftype not in GGJT_FTYPES:
        raise ValueError(f"GGJT ftype must be one of {sorted(GGJT_FTYPES)}")
    spec = Spec(continuation, loop)
    with open(path, "wb") as f:
        f.write(struct.pack("<II", 0x67676A74, 3))
        n_rot = spec.n_embd // spec.n_head
        f.write(
            struct.pack(
                "<7I",
                spec.n_vocab,
                spec.n_embd,
                N_MULT,
                spec.n_head,
                spec.n_layer,
                n_rot,
                GGJT_FTYPES[ftype],
            )
        )
        for text in _ggjt_vocab(spec):
            f.write(struct.pack("<I", len(text)) + text + struct.pack("<f", 0.0))
        for key, a in spec.tensors:
            ggml_type, data = _tensor_bytes(a, ftype)
            name = _name(key, GGJT_NAMES, "layers.").encode()
            f.write(struct.pack("<3I", a.ndim, len(name), ggml_type))
            f.write(struct.pack(f"<{a.ndim}I", *reversed(a.shape)))
            f.write(name)
            _pad(f)
            f.write(data)
    return spec


def _ggjt_vocab(spec: Spec) -> list[bytes]:
    # As the old converter wrote them: UNK " \u2047 ", control tokens empty, bytes raw.
    vocab = [" \u2047 ".encode(), b"", b""]
    vocab += [bytes([b]) for b in range(256)]
    vocab += spec.pieces
    return vocab


def _gguf_str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STR, GGUF_ARR = 4, 5, 6, 7, 8, 9


def _gguf_kv(key: str, vtype: int, value: object) -> bytes:
    out = _gguf_str(key) + struct.pack("<I", vtype)
    if vtype == GGUF_U32:
        return out + struct.pack("<I", value)
    if vtype == GGUF_F32:
        return out + struct.pack("<f", value)
    if vtype == GGUF_BOOL:
        return out + struct.pack("<?", value)
    if vtype == GGUF_STR:
        assert isinstance(value, str | bytes), value
        return out + _gguf_str(value)
    raise ValueError(vtype)


def _gguf_array(key: str, etype: int, values: Sequence[object]) -> bytes:
    out = _gguf_str(key) + struct.pack("<IIQ", GGUF_ARR, etype, len(values))
    if etype == GGUF_STR:
        strings = [v for v in values if isinstance(v, str | bytes)]
        assert len(strings) == len(values), values
        return out + b"".join(_gguf_str(v) for v in strings)
    fmt = {GGUF_I32: "i", GGUF_F32: "f", GGUF_U32: "I"}[etype]
    return out + struct.pack(f"<{len(values)}{fmt}", *values)


def write_gguf(
    path: str | Path,
    ftype: str = "f16",
    continuation: str | Sequence[bytes] = CONTINUATION,
    architecture: str = "llama",
    version: int = 3,
    loop: bool = False,
    chat_template: str | None = None,
) -> Spec:
    """Write a GGUF llama file; return its spec. `architecture` other than "llama" writes a
    file no llama loader accepts (for load-error tests). With `chat_template`, the vocabulary
    gains Gemma's turn tokens, and the answer ends with `<end_of_turn>` instead of EOS."""
    if ftype not in GGUF_FTYPES:
        raise ValueError(f"GGUF ftype must be one of {sorted(GGUF_FTYPES)}")
    turns: tuple[str, ...] = TURN_TOKENS if chat_template else ()
    spec = Spec(continuation, loop, specials=turns, end=turns[-1] if turns else "")
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [p.decode().replace(" ", SPM_SPACE) for p in spec.pieces]  # whole characters only
    tokens += spec.specials
    token_types = [2, 3, 3] + [6] * 256 + [1] * len(spec.pieces) + [3] * len(spec.specials)
    arch = architecture
    kvs = [
        _gguf_kv("general.architecture", GGUF_STR, arch),
        _gguf_kv("general.name", GGUF_STR, "tiny-test"),
        _gguf_kv("general.file_type", GGUF_U32, GGUF_FTYPES[ftype]),
        _gguf_kv("general.alignment", GGUF_U32, 32),
        _gguf_kv(f"{arch}.context_length", GGUF_U32, N_CTX),
        _gguf_kv(f"{arch}.embedding_length", GGUF_U32, spec.n_embd),
        _gguf_kv(f"{arch}.block_count", GGUF_U32, spec.n_layer),
        _gguf_kv(f"{arch}.feed_forward_length", GGUF_U32, spec.n_ff),
        _gguf_kv(f"{arch}.rope.dimension_count", GGUF_U32, spec.n_embd // spec.n_head),
        _gguf_kv(f"{arch}.attention.head_count", GGUF_U32, spec.n_head),
        _gguf_kv(f"{arch}.attention.head_count_kv", GGUF_U32, spec.n_head),
        _gguf_kv(f"{arch}.attention.layer_norm_rms_epsilon", GGUF_F32, RMS_EPS),
        _gguf_kv("tokenizer.ggml.model", GGUF_STR, "llama"),
        _gguf_array("tokenizer.ggml.tokens", GGUF_STR, tokens),
        _gguf_array("tokenizer.ggml.scores", GGUF_F32, [0.0] * len(tokens)),
        _gguf_array("tokenizer.ggml.token_type", GGUF_I32, token_types),
        _gguf_kv("tokenizer.ggml.bos_token_id", GGUF_U32, BOS_ID),
        _gguf_kv("tokenizer.ggml.eos_token_id", GGUF_U32, EOS_ID),
        _gguf_kv("tokenizer.ggml.unknown_token_id", GGUF_U32, UNK_ID),
    ]
    if chat_template:
        kvs += [
            _gguf_kv("tokenizer.chat_template", GGUF_STR, chat_template),
            _gguf_kv("tokenizer.ggml.eot_token_id", GGUF_U32, spec.special_ids[turns[-1]]),
        ]
    infos = []
    blobs = []
    offset = 0
    for key, a in spec.tensors:
        ggml_type, data = _tensor_bytes(a, ftype)
        name = _name(key, GGUF_NAMES, "blk.")
        info = _gguf_str(name) + struct.pack("<I", a.ndim)
        info += struct.pack(f"<{a.ndim}Q", *reversed(a.shape))
        info += struct.pack("<IQ", ggml_type, offset)
        infos.append(info)
        blobs.append(data)
        offset += len(data) + (-len(data) % 32)
    with open(path, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", version, len(infos), len(kvs)))
        f.write(b"".join(kvs))
        f.write(b"".join(infos))
        _pad(f)
        for data in blobs:
            f.write(data)
            _pad(f)
    return spec


def byte_tokens(text: str) -> list[int]:
    """The byte-fallback token ids of `text` (how every prompt tokenizes in these models)."""
    return [BYTE_BASE + b for b in text.encode()]
