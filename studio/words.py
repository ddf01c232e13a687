"""Sentences the engine says to people (log lines, data warnings, recommendations) are English templates filled in
with said(): the English sentence is what run folders and the CLI keep, and the page finds the template again to
say it in its own language (studio.ui.i18n.tr_said). The templates are the catalog's keys: a test collects every
said("…") and checks that each language translates it."""


def said(template: str, **values) -> str:
    """The template filled in. Values are formatted by the caller (no format specs in templates), so the page can
    read them back out of the sentence."""
    return template.format(**values)
