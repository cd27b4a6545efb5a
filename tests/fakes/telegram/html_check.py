"""Telegram's HTML parse mode, strictly: the subset of tags and entities the Bot API accepts.

Used by the fake Bot API to refuse what Telegram would refuse ("can't parse
entities"), so an escaping bug fails a test instead of a live alert.
"""

from __future__ import annotations

import html
import re

# https://core.telegram.org/bots/api#html-style
ALLOWED_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    }
)
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))*)\s*>")
# Telegram supports every numeric entity but only these four named ones.
_ENTITY_RE = re.compile(r"&(lt|gt|amp|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});")


class HtmlParseError(ValueError):
    pass


def _offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def parse_html(text: str) -> str:
    """The plain text a user would see; ``HtmlParseError`` with Telegram's wording on bad markup."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "<":
            m = _TAG_RE.match(text, i)
            if m is None:
                raise HtmlParseError(f"Unclosed start tag at byte offset {_offset(text, i)}")
            closing, name = m.group(1) == "/", m.group(2).lower()
            if name not in ALLOWED_TAGS:
                raise HtmlParseError(f'Unsupported start tag "{name}" at byte offset {_offset(text, i)}')
            if closing:
                if not stack or stack[-1] != name:
                    raise HtmlParseError(f"Unexpected end tag at byte offset {_offset(text, i)}")
                stack.pop()
            else:
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY_RE.match(text, i)
            if m is None:
                raise HtmlParseError(f"Unsupported HTML entity at byte offset {_offset(text, i)}")
            out.append(html.unescape(m.group(0)))
            i = m.end()
        elif ch == ">":
            raise HtmlParseError(f"Unexpected character '>' at byte offset {_offset(text, i)}")
        else:
            out.append(ch)
            i += 1
    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)
