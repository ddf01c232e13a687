"""The page in five languages: every text the page shows is in the English catalog (studio/ui/locales/en.json)
and translated in every other language file; texts handlers write go through tr() with a catalog entry."""
import ast
from pathlib import Path

import pytest

from studio import catalog, tasks
from studio.runfolder import ACTIVE, FINISHED
from studio.ui import i18n

UI = Path(i18n.__file__).resolve().parent


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from studio.run.jobs import JobManager
    from studio.ui.app import build_app
    from studio.workspace import Workspace
    workspace = Workspace(tmp_path_factory.mktemp("ws"))
    return build_app(workspace, JobManager(workspace, in_process=True))


def literal_calls(folder: Path = UI, function: str = "tr") -> set[str]:
    """The first argument of every function("…") call in the folder's code."""
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == function and node.args and \
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def engine_sentences() -> set[str]:
    """The templates of every sentence the engine says to people (studio.words.said)."""
    return literal_calls(UI.parent, "said")


def table_texts() -> set[str]:
    """Texts the UI passes to tr() from tables: the catalog, what the tasks describe (titles, columns,
    strategies and their options, metrics, settings, exports), words for fields, statuses, columns."""
    from studio.ui import runs_tab, strategy_tab
    out = {e.speed for e in catalog.CATALOG} | {e.good_for for e in catalog.CATALOG}
    for name in tasks.names():
        task = tasks.get(name)
        out |= {task.title} | {c.words for c in task.table_columns} | {s.words for s in task.strategies.values()}
        out |= {s.explain for s in task.strategies.values()} | {e.words for e in task.exports}
        out |= {m.words for m in (task.headline, *task.curves)} | {f.words for f in task.fields}
        out |= {f.info for f in task.fields if f.info}
        out |= {task.file_kind.unreadable} if task.file_kind else set()
    for option in strategy_tab.all_options().values():
        out |= {option.words} | ({option.info} if option.info else set())
    out |= set(strategy_tab.FIELD_WORDS.values())
    from studio.ui.panels import base, chat_results
    out |= set(runs_tab.COLUMNS) | set(runs_tab.COMPARE_COLUMNS) | set(chat_results.PAIR_COLUMNS)
    out |= set(chat_results.SAMPLE_COLUMNS) | {row[0] for row in chat_results.VERSUS}
    from studio.ui import data_tab
    out |= set(base.MISTAKE_COLUMNS) | {"example", "clip", "text", data_tab.NO_COLUMN}
    out |= {f"best {m.words}" for name in tasks.names() for m in tasks.get(name).curves}
    return out | set(ACTIVE) | set(FINISHED) | {"small", "medium", "large", "whole number", "number"}


def all_texts(app) -> set[str]:
    page = app.studio_texts.strings()
    return page | literal_calls() | table_texts() | engine_sentences()


def test_every_text_of_the_page_is_in_the_english_catalog(app):
    english = i18n.catalog("en")
    missing = sorted(all_texts(app) - set(english))
    assert not missing, f"{len(missing)} texts are not in locales/en.json, e.g. {missing[:10]}"


@pytest.mark.parametrize("lang", [code for code in i18n.LANGUAGES if code != "en"])
def test_every_language_translates_every_text(lang):
    english, other = i18n.catalog("en"), i18n.catalog(lang)
    assert set(other) == set(english), (sorted(set(english) - set(other))[:10], sorted(set(other) - set(english))[:10])
    empty = [key for key, value in other.items() if not value.strip()]
    assert not empty, empty[:10]
    for key, value in other.items():  # the same {placeholders}, or tr() would fail to fill them
        assert set(i18n.fields(key)) == set(i18n.fields(value)), (lang, key, value)


def test_every_label_info_and_placeholder_of_the_built_page_is_a_catalog_text(app):
    """Walks every component: a label, info or placeholder that is not a catalog text would stay English."""
    english = set(i18n.catalog("en"))
    stray = []
    for block in app.blocks.values():
        for prop in i18n.TEXT_PROPS:
            value = getattr(block, prop, None)
            if isinstance(value, str) and value.strip() and value not in english:
                stray.append((type(block).__name__, prop, value))
    assert not stray, stray[:10]


def test_the_language_comes_from_the_browser_until_one_is_picked():
    assert i18n.pick_language("de-DE,de;q=0.9,en;q=0.8") == "de"
    assert i18n.pick_language("pt-BR,fr;q=0.5") == "fr"
    assert i18n.pick_language("") == "en" and i18n.pick_language("ja") == "en"
    assert i18n.tr("Run", "de") != "Run" and i18n.tr("not in any catalog", "de") == "not in any catalog"


def test_an_engine_sentence_is_said_in_the_page_language_through_its_template():
    """The engine writes English (run folders and the CLI keep it); the page finds the template and fills the
    translation with the sentence's values, translating a value that is itself a catalog text."""
    from studio.words import said
    sentence = said("Stopped early after epoch {epoch}: validation loss has not improved for {n} epochs. Keeping "
                    "epoch {kept}.", epoch=9, n=3, kept=6)
    german = i18n.tr_said(sentence, "de")
    assert german != sentence and all(number in german for number in "936"), german
    nested = said("Training on {where}, {precision}.", where="cpu", precision=said("full precision"))
    assert i18n.catalog("de")["full precision"] in i18n.tr_said(nested, "de")
    assert i18n.tr_said("A sentence of no template stays as it is.", "de") == "A sentence of no template stays as it is."
    assert i18n.tr_said(sentence, "en") == sentence


def test_a_name_inside_a_sentence_keeps_german_nouns_and_acronyms_capitalised():
    assert i18n.mid_sentence("Full fine-tuning", "en") == "full fine-tuning"
    assert i18n.mid_sentence("Vollständige Feinabstimmung", "de") == "Vollständige Feinabstimmung"
    assert i18n.mid_sentence("LoRA (all linear layers)", "en") == "LoRA (all linear layers)"
