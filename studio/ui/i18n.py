"""The page in several languages, gettext-style: the code speaks English, and each language has one file,
studio/ui/locales/<language>.json, mapping each English text to its translation (en.json lists every text once).

Static texts (labels, info, placeholders, button captions, choices, tab names, headings) are collected from the
built page and translated when a page loads; texts made by handlers go through `tr(text, lang, **values)`. The
language comes from the browser (Accept-Language) until the person picks one on the page; picking one reloads
the page in it. Sentences from the engine (log lines, data warnings, recommendations: studio.words.said) are
translated through their templates by `tr_said`; recipe and data errors stay in English.
"""
from __future__ import annotations

import json
import re
import string
from functools import cache, lru_cache
from pathlib import Path

import gradio as gr

LANGUAGES = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español", "zh": "中文"}
LOCALES = Path(__file__).resolve().parent / "locales"


@cache
def catalog(lang: str) -> dict[str, str]:
    path = LOCALES / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def tr(text: str, lang: str = "en", **values) -> str:
    """`text` in the language (English when a translation is missing), with {placeholders} filled in."""
    out = text if lang == "en" else catalog(lang).get(text) or text
    return out.format(**values) if values else out


def mid_sentence(text: str, lang: str) -> str:
    """A name (a strategy's, say) as it reads inside a sentence: its first letter small, except in German (whose
    nouns keep theirs) and for an acronym (LoRA)."""
    first_word = text.split(" ")[0]
    if lang == "de" or len(first_word) < 2 or any(c.isupper() for c in first_word[1:]):
        return text
    return text[0].lower() + text[1:]


def fields(text: str) -> list[str]:
    """The {placeholders} of a text, in order."""
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


@cache
def _templates(lang: str) -> list[tuple[re.Pattern, str]]:
    """The catalog's texts with placeholders as patterns that read the values back out of an English sentence,
    the most literal first (a more specific template wins)."""
    out = []
    for key, value in catalog(lang).items():
        if not fields(key):
            continue
        pattern, seen = "", set()
        for literal, name, _, _ in string.Formatter().parse(key):
            pattern += re.escape(literal)
            if name:
                pattern += f"(?P={name})" if name in seen else f"(?P<{name}>.+?)"
                seen.add(name)
        out.append((len(re.sub(r"\{[^}]*\}", "", key)), re.compile(pattern, re.S), value))
    return [(pattern, value) for _, pattern, value in sorted(out, key=lambda t: -t[0])]


@lru_cache(maxsize=4096)
def tr_said(text: str, lang: str = "en") -> str:
    """An engine's sentence (studio.words.said) in the language: its template found, its values put back in
    (translated where they are catalog texts).
    A sentence of no known template stays as it is."""
    if lang == "en" or not text:
        return text
    if text in catalog(lang):
        return catalog(lang)[text]
    for pattern, value in _templates(lang):
        found = pattern.fullmatch(text)
        if found:  # a value that is itself a catalog text (a strategy's name, say) is translated too
            return value.format(**{k: tr_said(v, lang) for k, v in found.groupdict().items()})
    return text


def pick_language(accept_language: str | None) -> str:
    """The first language of an Accept-Language header that the page speaks; English otherwise."""
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower().split("-")[0]
        if code in LANGUAGES:
            return code
    return "en"


# (component type, property) pairs whose build-time text is translated when the page loads
TEXT_PROPS = ("label", "info", "placeholder")


class PageTexts:
    """Every static text of the built page, to translate it when a page loads. Markdown and HTML values are
    static only when registered with `static()` (the others are written by handlers, in the page's language)."""

    def __init__(self):
        self.static_blocks: list = []
        self.kept_choices: list = []
        self.entries: list[tuple[object, dict[str, object]]] = []  # (component, {prop: English text or choices})

    def static(self, block):
        self.static_blocks.append(block)
        return block

    def keep_choices(self, block):
        """Choices shown as they are in every language (the languages' own names, say)."""
        self.kept_choices.append(block)
        return block

    def collect(self, blocks) -> None:
        """Called once the page is built: records each component's English texts."""
        for block in blocks.values():
            texts = {}
            for prop in TEXT_PROPS:
                value = getattr(block, prop, None)
                if isinstance(value, str) and value.strip():
                    texts[prop] = value
            if isinstance(block, gr.Button) and isinstance(block.value, str) and block.value.strip():
                texts["value"] = block.value
            if isinstance(block, (gr.Radio, gr.Dropdown)) and block.choices and \
                    not any(block is k for k in self.kept_choices):
                texts["choices"] = [tuple(choice) for choice in block.choices]
            if any(block is s for s in self.static_blocks) and isinstance(block.value, str):
                texts["value"] = block.value
            if texts:
                self.entries.append((block, texts))

    @property
    def components(self) -> list:
        return [block for block, _ in self.entries]

    def strings(self) -> set[str]:
        """Every English text the page shows before any handler runs."""
        out = set()
        for _, texts in self.entries:
            for prop, value in texts.items():
                out.update(str(label) for label, _ in value) if prop == "choices" else out.add(value)
        return out

    def updates(self, lang: str) -> dict:
        """{component: update} of every static text in the language."""
        out = {}
        for block, texts in self.entries:
            changes = {prop: ([(tr(str(label), lang), key) for label, key in value] if prop == "choices"
                              else tr(value, lang)) for prop, value in texts.items()}
            out[block] = gr.update(**changes)
        return out
