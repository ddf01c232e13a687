"""The data and recipes that ship with the studio. This folder sits at the top of the repository and is installed
as the package `studio.assets` (pyproject.toml maps it), so the wheel carries it; its paths are here.
`python -m studio.examples` regenerates the examples."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "examples"
RECIPES = ROOT / "recipes"
HELPDESK_CSV = EXAMPLES / "helpdesk.csv"  # labelled help-desk messages (text classification)
HELPDESK_CHAT = EXAMPLES / "helpdesk-chat.csv"  # prompt → answer pairs of a fictional help desk (instruction tuning)
HELPDESK_PREFERENCES = EXAMPLES / "helpdesk-preferences.csv"  # its answers (better) beside plain ones (worse)
SHAPES_DIR = EXAMPLES / "shapes"  # coloured shapes on noisy backgrounds, a folder per shape (images)
COMMANDS_DIR = EXAMPLES / "commands"  # spoken command words, a folder per word (audio)
SENTENCE_CLIP = EXAMPLES / "kitchen-lights.flac"  # a clip of known words, for the transcription test
SENTENCE = "please turn on the kitchen lights"
GENERAL_TEXT = ROOT / "general" / "general_text.txt"  # general knowledge, one passage a line (chat tasks)
