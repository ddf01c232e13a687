"""The data layer's error: data the studio cannot train on, with a message that says how to fix it."""
from pathlib import Path

from studio.errors import UserError


class DataError(UserError):
    """Data the studio cannot train on; the message says what is wrong and how to fix it."""


def existing(spec_path: str) -> Path:
    """The data a recipe names, when it exists; DataError saying where it was looked for otherwise."""
    path = Path(spec_path).expanduser()
    if not path.exists():
        raise DataError(f"Data not found: {spec_path}. Check data.path (relative paths start from the folder "
                        "you run the studio in).")
    return path
