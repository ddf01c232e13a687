"""The wheel carries the studio whole: built from this checkout and installed elsewhere with --target, it starts
from a folder that is not the checkout, with its examples and languages inside the installed package, and the page
speaks German and tries an example."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from browser_helpers import tab, wait_text
from helpers import free_port, start_server
from studio.ui.i18n import tr

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the folder the wheel was installed into, the wheel). Built from a copy of the checkout's sources, so the
    build's own folders stay out of the checkout."""
    import shutil
    source = tmp_path_factory.mktemp("source")
    for name in ("studio", "assets"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
                    str(source)], check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("studio-*.whl"))
    target = tmp_path_factory.mktemp("target")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return target, wheel


def test_the_wheel_holds_the_examples_recipes_and_languages(installed):
    _, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "studio/assets/examples/helpdesk.csv" in names and "studio/assets/recipes/shapes.yaml" in names
    assert any(n.startswith("studio/assets/examples/shapes/circle/") for n in names)
    assert {f"studio/ui/locales/{lang}.json" for lang in ("en", "de", "fr", "es", "zh")} <= set(names)


def test_the_installed_studio_starts_in_german_and_tries_an_example(installed, tmp_path, page):
    target, _ = installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import studio, studio.assets as a; print(studio.__file__); "
                            "print(a.SHAPES_DIR)"], cwd=elsewhere, env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert all(Path(p).is_relative_to(target) for p in where), where
    assert Path(where[1]).is_dir()
    port = free_port()
    server = start_server([sys.executable, "-m", "studio.cli", "--workspace", str(tmp_path / "ws"), "serve",
                           "--port", str(port)], port, tmp_path / "server.log", cwd=elsewhere, env=env)
    try:
        context = page.context.browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900})
        german = context.new_page()
        german.goto(f"http://127.0.0.1:{port}")
        tab(german, tr("Data", "de"))
        wait_text(german, "#example-shapes", "Beispiel ausprobieren", timeout=60)
        german.locator("#example-shapes").click()
        wait_text(german, "#data-status", "Bereit", timeout=120)
        context.close()
    finally:
        server.terminate()
        server.wait(30)
