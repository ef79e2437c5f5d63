"""A tiny syntax highlighter: comments, strings, numbers and keywords, by one regex per language.

Why not Pygments: it is a 1.2 MB wheel with hundreds of lexer modules, for a chat that mostly
shows short snippets. A regex scan is a few dozen lines, works on half-written code while an
answer streams (a tokenizer would choke on an unclosed string), and colours what matters for
reading. Output is (kind, text) pairs; kind is a CSS class string or "" for plain text, and the
pieces always join back to the input exactly.
"""

from __future__ import annotations

import re

KEYWORD = "text-purple-700 dark:text-purple-300"
STRING = "text-green-700 dark:text-green-300"
COMMENT = "italic text-gray-500 dark:text-gray-400"
NUMBER = "text-orange-700 dark:text-orange-300"

_PY = (
    "False None True and as assert async await break class continue def del elif else except finally for from "
    "global if import in is lambda match case nonlocal not or pass raise return try while with yield self print"
)
_JS = (
    "break case catch class const continue debugger default delete do else export extends false finally for "
    "function if import in instanceof let new null return super switch this throw true try typeof undefined var "
    "void while with yield async await of interface type enum implements"
)
_C = (
    "auto bool break case char class const continue default do double else enum extern false float for goto if "
    "int long namespace new nullptr private protected public return short signed sizeof static struct switch "
    "template this throw true try typedef union unsigned using virtual void volatile while import package final "
    "boolean String"
)
_RUST = (
    "as async await break const continue crate dyn else enum extern false fn for if impl in let loop match mod "
    "move mut pub ref return self Self static struct super trait true type unsafe use where while Some None Ok Err"
)
_GO = (
    "break case chan const continue default defer else fallthrough for func go goto if import interface map "
    "package range return select struct switch type var nil true false"
)
_SH = "if then else elif fi for while do done case esac function in return export local echo exit"

# language -> (keywords, line comment pattern)
LANGS: dict[str, tuple[str, str]] = {
    "python": (_PY, "#"),
    "javascript": (_JS, "//"),
    "c": (_C, "//"),
    "rust": (_RUST, "//"),
    "go": (_GO, "//"),
    "bash": (_SH, "#"),
    "json": ("true false null", "//"),
}
ALIASES = {
    "py": "python", "python3": "python", "js": "javascript", "ts": "javascript", "typescript": "javascript",
    "jsx": "javascript", "tsx": "javascript", "cpp": "c", "c++": "c", "java": "c", "cs": "c", "csharp": "c",
    "kotlin": "c", "swift": "c", "rs": "rust", "golang": "go", "sh": "bash", "shell": "bash", "zsh": "bash",
    "console": "bash",
}  # fmt: skip

_STRINGS = r"\"\"\"[\s\S]*?(?:\"\"\"|$)|'''[\s\S]*?(?:'''|$)|\"(?:\\.|[^\"\\\n])*\"?|'(?:\\.|[^'\\\n])*'?|`[^`]*`?"
_NUMBER = r"\b(?:0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)\b"
_cache: dict[str, re.Pattern[str]] = {}


def _pattern(lang: str) -> re.Pattern[str]:
    if lang not in _cache:
        words, line_comment = LANGS[lang]
        comment = re.escape(line_comment) + r"[^\n]*"
        if line_comment == "//":
            comment += r"|/\*[\s\S]*?(?:\*/|$)"
        keywords = r"\b(?:" + "|".join(re.escape(w) for w in words.split()) + r")\b"
        _cache[lang] = re.compile(f"(?P<c>{comment})|(?P<s>{_STRINGS})|(?P<n>{_NUMBER})|(?P<k>{keywords})")
    return _cache[lang]


def highlight(code: str, lang: str) -> list[tuple[str, str]]:
    name = ALIASES.get(lang.lower(), lang.lower())
    if name not in LANGS:
        return [("", code)] if code else []
    kinds = {"c": COMMENT, "s": STRING, "n": NUMBER, "k": KEYWORD}
    out: list[tuple[str, str]] = []
    pos = 0
    for match in _pattern(name).finditer(code):
        if match.start() > pos:
            out.append(("", code[pos : match.start()]))
        out.append((kinds[match.lastgroup or ""], match.group()))
        pos = match.end()
    if pos < len(code):
        out.append(("", code[pos:]))
    return out
