"""Text for a language-model teacher: an item row -> one sentence, a user -> one profile sentence.

Input: a dataset's `item_text` table (row i = item i, string columns such as `title`, `genres`; lists such as
genres and tags stored `|`-joined) and, for users, their attributes and the titles they interacted with.
Output: plain strings, one per item or user, ready for `TextEncoder.encode`.

Template syntax (`ItemTextTemplate.template`), a small superset of `str.format` field names:

| syntax     | meaning                                                                              |
|------------|--------------------------------------------------------------------------------------|
| `{field}`  | the value of column `field` (stripped); list fields are re-joined with `list_join`   |
| `[...]`    | an optional segment: dropped whole when any field inside it is empty                 |
| `{{` `}}`  | a literal `{` / `}`                                                                  |
| `[[` `]]`  | a literal `[` / `]`                                                                  |

So `"{title}[. Genres: {genres}]"` renders ml-1m item 1 as
`"Toy Story (1995). Genres: Animation, Children's, Comedy"` and an item without genres as its bare title (no
`"Genres: ."` leftover). Text outside optional segments is always kept, and an empty field there renders as
nothing. Segments do not nest. A field that is not a column of the table raises `TemplateError` naming the field
and the available columns; a malformed template raises `TemplateError` naming the position.
"""

from __future__ import annotations

import ast
import html
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import pandas as pd

__all__ = [
    "DEFAULT_TEMPLATES",
    "ML_1M_USER_CODES",
    "ItemTextTemplate",
    "TemplateError",
    "default_template",
    "user_profile_text",
]


class TemplateError(ValueError):
    """A template is malformed or names a field that the item table does not have."""


class _Field(NamedTuple):
    name: str


# A parsed template: segments of (optional, parts); a part is literal text or a `_Field`.
_Segment = tuple[bool, tuple[str | _Field, ...]]


@lru_cache(maxsize=64)
def _parse(template: str) -> tuple[_Segment, ...]:
    segments: list[_Segment] = []
    parts: list[str | _Field] = []
    literal: list[str] = []
    optional = False
    i, n = 0, len(template)

    def flush_literal() -> None:
        if literal:
            parts.append("".join(literal))
            literal.clear()

    def close_segment(is_optional: bool) -> None:
        flush_literal()
        if parts:
            segments.append((is_optional, tuple(parts)))
            parts.clear()

    while i < n:
        ch = template[i]
        pair = template[i : i + 2]
        if pair in ("{{", "}}", "[[", "]]"):
            literal.append(ch)
            i += 2
        elif ch == "{":
            end = template.find("}", i + 1)
            if end < 0:
                raise TemplateError(f"template {template!r}: '{{' at position {i} is never closed")
            name = template[i + 1 : end]
            if not name or any(c in name for c in "{[]"):
                raise TemplateError(
                    f"template {template!r}: bad field name {name!r} at position {i} "
                    "(write {column}; use {{ and }} for literal braces)"
                )
            flush_literal()
            parts.append(_Field(name))
            i = end + 1
        elif ch == "[":
            if optional:
                raise TemplateError(f"template {template!r}: optional segments do not nest (position {i})")
            close_segment(False)
            optional = True
            start = i
            i += 1
        elif ch == "]":
            if not optional:
                raise TemplateError(
                    f"template {template!r}: ']' at position {i} closes no '[' (use ]] for a literal ])"
                )
            flush_literal()
            if not any(isinstance(p, _Field) for p in parts):
                raise TemplateError(
                    f"template {template!r}: the optional segment at position {start} holds no {{field}}"
                )
            close_segment(True)
            optional = False
            i += 1
        elif ch == "}":
            raise TemplateError(
                f"template {template!r}: '}}' at position {i} closes no '{{' (use }}}} for a literal }})"
            )
        else:
            literal.append(ch)
            i += 1
    if optional:
        raise TemplateError(f"template {template!r}: the '[' at position {start} is never closed")
    close_segment(False)
    return tuple(segments)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class ItemTextTemplate:
    """Render item rows as text; see the module docstring for the template syntax.

    template: the text with `{column}` fields and `[optional]` segments.
    list_fields: columns that hold lists joined with `list_sep` in the data (genres, tags); their elements are
        stripped, empty ones dropped, and re-joined with `list_join`. Other columns are used verbatim (stripped),
        so a `|` inside an Amazon title stays as it is.
    list_ignore: list elements dropped (case-insensitively): ml-100k flags genre-less movies with the genre
        "unknown", which says nothing; an item whose only genre is ignored renders without its genre segment.
    unescape_html: decode HTML entities in values (`&amp;` -> `&`); amazon-beauty titles hold ~1,000 of them.
    """

    template: str = "{title}[. Genres: {genres}]"
    list_sep: str = "|"
    list_join: str = ", "
    list_fields: tuple[str, ...] = ("genres", "tags")
    list_ignore: tuple[str, ...] = ("unknown",)
    unescape_html: bool = True

    @property
    def fields(self) -> tuple[str, ...]:
        """The column names the template uses, in order of first use."""
        names: dict[str, None] = {}
        for _, parts in _parse(self.template):
            for part in parts:
                if isinstance(part, _Field):
                    names[part.name] = None
        return tuple(names)

    @property
    def key(self) -> str:
        """A string that changes whenever rendering could change (for cache keys)."""
        return repr(self)

    @classmethod
    def from_key(cls, key: str) -> ItemTextTemplate:
        """The template whose `key` is `key` (as a teacher manifest records it); `TemplateError` otherwise."""
        try:
            call = ast.parse(key, mode="eval").body
            if not (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == cls.__name__
            ):
                raise ValueError("not a template key")
            return cls(**{kw.arg: ast.literal_eval(kw.value) for kw in call.keywords})
        except (SyntaxError, ValueError, TypeError) as exc:
            raise TemplateError(f"not a template key ({exc}): {key!r}") from None

    def check_columns(self, columns: Iterable[str]) -> None:
        """Raise `TemplateError` naming the first template field that is not in `columns`."""
        available = [str(c) for c in columns]
        for name in self.fields:
            if name not in available:
                raise TemplateError(
                    f"template field {name!r} is not a column of the item table; available columns: {available}"
                )

    def render(self, row: Mapping[str, object]) -> str:
        """One item's text from a mapping column -> value (missing/NaN values count as empty)."""
        self.check_columns(row.keys())
        return self._render(row)

    def render_items(self, item_text: pd.DataFrame) -> list[str]:
        """One text per row of a `Dataset.item_text` table, in row (= item index) order."""
        self.check_columns(item_text.columns)
        columns = list(self.fields)
        return [
            self._render(dict(zip(columns, values, strict=True)))
            for values in item_text[columns].itertuples(index=False)
        ]

    def _value(self, name: str, value: object) -> str:
        if _is_missing(value):
            return ""
        text = str(value).strip()
        if self.unescape_html and "&" in text:
            text = html.unescape(text)
        if name in self.list_fields:
            ignore = {x.casefold() for x in self.list_ignore}
            elements = (x.strip() for x in text.split(self.list_sep))
            return self.list_join.join(x for x in elements if x and x.casefold() not in ignore)
        return text

    def _render(self, row: Mapping[str, object]) -> str:
        out: list[str] = []
        for optional, parts in _parse(self.template):
            rendered = [p if isinstance(p, str) else self._value(p.name, row[p.name]) for p in parts]
            if optional and any(
                isinstance(p, _Field) and not r for p, r in zip(parts, rendered, strict=True)
            ):
                continue
            out.extend(rendered)
        return "".join(out).strip()


# Default templates per known item column set (as `formats.read_raw` produces them).
DEFAULT_TEMPLATES: dict[frozenset[str], str] = {
    frozenset({"title"}): "{title}",
    frozenset({"title", "genres"}): "{title}[. Genres: {genres}]",  # ml-1m
    frozenset(
        {"title", "genres", "release_date"}
    ): "{title}[. Genres: {genres}]",  # ml-100k (year is in title)
    frozenset({"title", "genres", "tags"}): "{title}[. Genres: {genres}][. Tags: {tags}]",  # ml-latest-small
    frozenset({"title", "asin"}): "{title}",  # amazon-beauty: the ASIN is an id, not text
}


def default_template(columns: Iterable[str]) -> ItemTextTemplate:
    """The default template for an item table with these columns: the known datasets' own, else every column
    (`title` or `name` first, the others as labelled, optional segments: "{title}[. Description: {description}]");
    `TemplateError` when there is no text column at all."""
    names = [str(c) for c in columns]
    present = frozenset(names)
    if present in DEFAULT_TEMPLATES:
        return ItemTextTemplate(DEFAULT_TEMPLATES[present])
    if not names:
        raise TemplateError(
            "the items have no text column: the teacher reads item text (an items file with item_id and text "
            "columns such as title or description)"
        )
    names = [c for c in names if not set(c) & set("{}[]")]  # a field name cannot hold template characters
    head = [c for key in ("title", "name") for c in names if c.lower() == key][:1]
    rest = [c for c in names if c not in head]
    segments = [f"{{{c}}}" for c in head]
    segments += [
        f"[{'. ' if segments or i else ''}{c.replace('_', ' ').capitalize()}: {{{c}}}]"
        for i, c in enumerate(rest)
    ]
    return ItemTextTemplate("".join(segments))


# MovieLens 1M stores age and occupation as codes (README of ml-1m, "USERS FILE DESCRIPTION").
ML_1M_USER_CODES: dict[str, dict[str, str]] = {
    "gender": {"F": "female", "M": "male"},
    "age": {
        "1": "under 18",
        "18": "18-24",
        "25": "25-34",
        "35": "35-44",
        "45": "45-49",
        "50": "50-55",
        "56": "56+",
    },
    "occupation": {
        "0": "other",
        "1": "academic/educator",
        "2": "artist",
        "3": "clerical/admin",
        "4": "college/grad student",
        "5": "customer service",
        "6": "doctor/health care",
        "7": "executive/managerial",
        "8": "farmer",
        "9": "homemaker",
        "10": "K-12 student",
        "11": "lawyer",
        "12": "programmer",
        "13": "retired",
        "14": "sales/marketing",
        "15": "scientist",
        "16": "self-employed",
        "17": "technician/engineer",
        "18": "tradesman/craftsman",
        "19": "unemployed",
        "20": "writer",
    },
}


def user_profile_text(
    attrs: Mapping[str, object] | None,
    recent_titles: Sequence[str],
    max_items: int = 10,
    *,
    codes: Mapping[str, Mapping[str, str]] | None = None,
    exclude: Collection[str] = ("zip",),
    items_label: str = "Recent items",
) -> str:
    """A user's profile as one text: attributes (when present) then the most recent titles.

    attrs: column -> value (a row of `Dataset.user_attrs`, or None); empty values and the `exclude` columns
        (zip codes carry no meaning for a language model) are left out.
    recent_titles: the user's item titles in time order, oldest first; the last `max_items` are kept, in order.
    codes: optional decoding tables column -> {code: label} (e.g. `ML_1M_USER_CODES`); a code missing from its
        table raises `ValueError` naming the column and the known codes.

    E.g. `"User: gender female, age under 18, occupation K-12 student. Recent items: Toy Story (1995);
    Jumanji (1995)."`; `""` for a user with neither attributes nor titles.
    """
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    pieces: list[str] = []
    described: list[str] = []
    for column, value in (attrs or {}).items():
        if column in exclude or _is_missing(value) or str(value).strip() == "":
            continue
        text = str(value).strip()
        if codes is not None and column in codes:
            table = codes[column]
            if text not in table:
                raise ValueError(
                    f"user attribute {column}={text!r} is not a known code; known: {sorted(table)}"
                )
            text = table[text]
        described.append(f"{column} {text}")
    if described:
        pieces.append(_sentence("User: " + ", ".join(described)))
    titles = [t.strip() for t in recent_titles if t and t.strip()][-max_items:]
    if titles:
        pieces.append(_sentence(f"{items_label}: " + "; ".join(titles)))
    return " ".join(pieces)


def _sentence(text: str) -> str:
    """End with a full stop unless the text already ends in one (a title like "Monsters, Inc.")."""
    return text if text.endswith((".", "!", "?")) else text + "."
