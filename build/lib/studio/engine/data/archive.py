"""Unpacking uploaded .zip archives safely, and content digests of files.

Limits that protect a shared machine are read from the environment each time: STUDIO_ZIP_MAX_MB and
STUDIO_ZIP_MAX_FILES cap what one .zip may unpack to.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from studio.engine.data.errors import DataError
from studio.errors import first_line
from studio.engine.data.words import size as _size
from studio.settings import env_number

DEFAULT_ZIP_MAX_MB = 4096  # uncompressed, guards against zip bombs
DEFAULT_ZIP_MAX_FILES = 200_000


def zip_limits() -> tuple[int, int]:
    """(largest total unpacked size in bytes, most files) one archive may unpack to."""
    return (int(env_number("STUDIO_ZIP_MAX_MB", DEFAULT_ZIP_MAX_MB) * 1024**2),
            int(env_number("STUDIO_ZIP_MAX_FILES", DEFAULT_ZIP_MAX_FILES)))


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's content, read in chunks so a large upload never sits in memory whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()



def _safe_member_name(member: zipfile.ZipInfo) -> PurePosixPath | None:
    """The entry's path inside the archive, or None when it is absolute, climbs out ('..') or is a link."""
    raw = member.filename.replace("\\", "/")
    name = PurePosixPath(raw)
    is_link = (member.external_attr >> 16) & 0o170000 == 0o120000
    if not raw or name.is_absolute() or ".." in name.parts or re.match(r"^[A-Za-z]:", raw) or is_link:
        return None
    return name


def extract_zip(archive: Path, dest_root: Path, display: str | None = None) -> Path:
    """Unpacks a .zip into a folder named by its content hash under dest_root. Refuses unsafe entries (absolute
    paths, '..', links), password-protected entries, and archives over the size and file-count limits, before
    anything is written; a damaged archive leaves nothing behind."""
    name = display or archive.name
    dest = dest_root / file_digest(archive)[:16]
    if (dest / ".complete").exists():
        return dest
    max_bytes, max_files = zip_limits()
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, NotImplementedError, EOFError,
            RuntimeError, zlib.error):
        raise DataError(f"{name} is not a valid .zip file (it may be damaged or cut short). Re-create it with "
                        "your system's 'compress' command and upload it again.") from None
    with zf:
        members = zf.infolist()
        if not members:
            raise DataError(f"{name} is an empty .zip: it holds no files. Zip the folder of class sub-folders.")
        if len(members) > max_files:
            raise DataError(f"{name} holds {len(members):,} files; the studio unpacks at most "
                            f"{max_files:,} files from one archive (STUDIO_ZIP_MAX_FILES). "
                            "Upload a smaller archive.")
        total = sum(m.file_size for m in members)
        if total > max_bytes:
            raise DataError(f"{name} would unpack to {_size(total)}, over the {_size(max_bytes)} limit for "
                            "one archive (STUDIO_ZIP_MAX_MB). Upload a smaller archive.")
        for member in members:
            if _safe_member_name(member) is None:
                raise DataError(f"{name} contains an unsafe entry '{member.filename}' (absolute path, '..' or a "
                                "link). Re-create the archive from a plain folder.")
            if member.flag_bits & 0x1:
                raise DataError(f"{name} is password-protected ('{member.filename}' is encrypted). Zip the folder "
                                "again without a password.")
        dest.mkdir(parents=True, exist_ok=True)
        budget = max_bytes
        member = members[0]
        try:
            for member in members:
                target = dest.joinpath(*_safe_member_name(member).parts)
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)  # an empty class folder is news the user needs
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as out:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        budget -= len(chunk)
                        if budget < 0:
                            raise DataError(f"{name} unpacks to more than {_size(max_bytes)} "
                                            "(STUDIO_ZIP_MAX_MB). Upload a smaller archive.")
                        out.write(chunk)
        except DataError:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as exc:
            shutil.rmtree(dest, ignore_errors=True)
            detail = first_line(exc, 1000)
            raise DataError(f"{name} is damaged: the entry '{member.filename}' could not be unpacked ({detail}). "
                            "Re-create the archive and upload it again.") from None
    (dest / ".complete").touch()
    return dest

