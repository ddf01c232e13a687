"""Who may see a run, and what a user's recipe may read: the one place that says it, for the JSON API and the page.

A studio without accounts is one person's (or one trusted team's behind `--auth`): every run is visible and a
recipe may read whatever the machine lets it, as before accounts existed. With accounts, an admin sees every run
and is trusted with any recipe; anyone else sees only the runs they own (runs made before accounts existed have no
owner: admins only), and their recipes may read only their own uploads, the bundled examples and the folders an
admin opened with `studio serve --data-root DIR`.

    who = viewer(workspace, "bob")           # from a login or an API token
    visible(status, who)                     # a run's status.json (or a runs-list entry): may bob see it?
    find_run(workspace, who, run_id)         # its folder, or RunNotFound alike for a missing and a hidden run
    check_recipe(recipe, who, workspace, data_roots)   # RecipeError naming the key, before the run is started
    check_data(recipe.data, who, workspace, data_roots) # the same for the data alone (the Data tab's check)
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from studio import catalog
from studio.assets import EXAMPLES
from studio.engine.data.tables import read_table
from studio.recipe import DataSpec, Recipe, RecipeError
from studio.runfolder import STATUS, read_json
from studio.users import Limits, Users, check_name
from studio.workspace import RunNotFound, Workspace

OUTPUT_DIR = re.compile(r"[A-Za-z0-9][\w.-]*")  # a user's output_dir: one folder of the workspace
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")  # a run folder's name; never a path
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")  # name or org/name
LOCAL_TRACKING = ("sqlite", "file")  # MLflow stores that are files on this machine


@dataclass(frozen=True)
class Viewer:
    """Who asks. name: their login (None: no one logged in). accounts: whether the studio has accounts at all."""
    name: str | None
    admin: bool = False
    accounts: bool = True
    limits: Limits = field(default_factory=Limits)

    @property
    def sees_everything(self) -> bool:
        return self.admin or not self.accounts

    @property
    def owner(self) -> str | None:
        """What a run this viewer starts records as its owner (None in a studio without accounts)."""
        return self.name if self.accounts else None


def viewer(workspace: Workspace, name: str | None, logins: Collection[str] = ()) -> Viewer:
    """The viewer for a login (None: anonymous). logins: the names of the `--auth` pairs the studio was started
    with, ordinary users with the default limits beside the accounts. Any other name the accounts do not hold (an
    account removed while its login cookie lives on) is anonymous: it sees no run and starts none."""
    users = Users(workspace.root)
    if not users.exist():
        return Viewer(name, accounts=False)
    user = users.get(name) if name else None
    if user is None:
        return Viewer(name if name in logins else None)
    return Viewer(name, admin=user.is_admin, limits=user.limits)


def visible(status: dict, who: Viewer) -> bool:
    """Whether `who` may see (open, download, stop, use) the run whose status.json this is."""
    return who.sees_everything or (who.name is not None and status.get("owner") == who.name)


def find_run(workspace: Workspace, who: Viewer, run_id: str) -> Path:
    """A run's folder by its id (a folder name, never a path). RunNotFound, with the same words, for a run that
    does not exist and one `who` may not see: no one learns which ids exist by trying them."""
    if isinstance(run_id, str) and RUN_ID.fullmatch(run_id):
        for run_dir in reversed(workspace.run_dirs()):
            if run_dir.name == run_id and visible(read_json(run_dir / STATUS) or {}, who):
                return run_dir
    raise RunNotFound(f"No run called {str(run_id)[:100]!r} here.")


def check_owner(workspace: Workspace, name: str | None) -> str | None:
    """The owner named for a run started from the command line (`studio train --owner NAME`): an account of the
    workspace (AccountError in words otherwise); None stays None."""
    if name is None:
        return None
    check_name(name)
    return Users(workspace.root).require(name).name


def check_recipe(recipe: Recipe, who: Viewer, workspace: Workspace, data_roots: list[str | Path] = (),
                 disk: bool = True) -> None:
    """RecipeError naming the key when `who` may not start this recipe; nothing for an admin or a studio without
    accounts. Paths are taken as the job manager takes them (relative to this process's folder), resolved through
    symbolic links, so that no name leads outside what the user may read. disk: also check_disk (a sweep checks
    it once, not for each of its recipes)."""
    if who.sees_everything:
        return
    if who.name is None:  # accounts were added after this studio started: its page asks for no login yet
        raise RecipeError("Log in first: this studio has accounts now, and starts runs only for them. Ask an admin "
                          "to restart it (`studio serve`), and log in.")
    if disk:
        check_disk(workspace, who)
    if recipe.trust_remote_code:
        raise RecipeError("Recipe key 'trust_remote_code' is true: running the Python code a model ships with is "
                          "for admins only. Leave it false, or ask an admin to start this run.")
    check_data(recipe.data, who, workspace, data_roots)
    _check_model(recipe.model, who, workspace)
    # One folder name: runs are found (and counted against their owner) one level below a workspace folder, and a
    # nested name could lead into another user's run.
    root = workspace.root.resolve()
    out = (root / recipe.output_dir).resolve()
    if not OUTPUT_DIR.fullmatch(str(recipe.output_dir)) or out.parent != root or \
            _inside(out, [root / name for name in workspace.own_folders]):
        raise RecipeError(f"Recipe key 'output_dir' is {recipe.output_dir!r}: give one folder name of the "
                          "workspace for runs, such as 'runs'.")
    uri = recipe.train.mlflow_tracking_uri
    if uri and urlsplit(uri.strip()).scheme.split("+")[0].lower() in LOCAL_TRACKING:
        raise RecipeError("Recipe key 'train.mlflow_tracking_uri' names a file on the studio's machine: leave it "
                          "out (the workspace's own MLflow store), or give an http(s) tracking server.")


def check_data(spec: DataSpec, who: Viewer, workspace: Workspace, data_roots: list[str | Path] = ()) -> None:
    """RecipeError naming the key when `who` may not read the data a recipe (or the Data tab's check) names."""
    if who.sees_everything:
        return
    readable = [workspace.user_uploads_dir(who.name), EXAMPLES, *data_roots]
    allowed = [Path(root).expanduser().resolve() for root in readable]
    for key in ("path", "validation_path", "corrections"):
        value = getattr(spec, key)
        if value and not _inside(Path(value).expanduser().resolve(), allowed):
            raise RecipeError(f"Recipe key 'data.{key}' is {value!r}: your recipes may read only your own uploads, "
                              f"the bundled examples{' and the data folders this studio opened' * bool(data_roots)}.")
    if spec.path_column:
        _check_listed_files(Path(spec.path).expanduser().resolve(), spec.path_column, allowed)


def check_disk(workspace: Workspace, who: Viewer) -> None:
    """RecipeError when `who`'s runs and uploads take more of the workspace than their limit allows."""
    if who.sees_everything:
        return
    used = disk_used_gb(workspace, who)
    if used > who.limits.max_disk_gb:
        raise RecipeError(f"Your runs and uploads take {used:.1f} GB of the workspace, over your limit of "
                          f"{who.limits.max_disk_gb} GB: delete runs you no longer need (Runs tab: Delete this "
                          "run), or ask an admin to raise it (studio users limit NAME --max-disk-gb N).")


def disk_used_gb(workspace: Workspace, who: Viewer) -> float:
    """What `who`'s run folders and uploads take on disk, in GB (their limit: Limits.max_disk_gb)."""
    folders = [d for d in workspace.run_dirs() if (read_json(d / STATUS) or {}).get("owner") == who.name]
    folders.append(workspace.user_uploads_dir(who.name))
    return sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file()) / 1e9


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _check_model(model: str, who: Viewer, workspace: Workspace) -> None:
    """A catalog name, a hub id, or a folder inside one of the viewer's own runs. A name is local when it is a
    path, or exists where a worker might look it up (this process's folder, the workspace, its cache)."""
    if catalog.find(model):
        return
    path = Path(model).expanduser()
    bases = [Path.cwd(), workspace.root, workspace.spare_worker_log.parent]
    places = [path] if path.is_absolute() else [base / path for base in bases]
    local = model.startswith((".", "~")) or "\\" in model or path.is_absolute() or any(p.exists() for p in places)
    if not local and HUB_ID.fullmatch(model) and ".." not in model:
        return
    for place in (p.resolve() for p in places if p.exists()):
        run = next((d for d in workspace.run_dirs() if _inside(place, [d])), None)
        if run is not None and visible(read_json(run / STATUS) or {}, who):
            return
    raise RecipeError(f"Recipe key 'model' is {model!r}: name a catalog model, a Hugging Face hub id (like "
                      "org/name) or the model folder of one of your own runs.")


def _check_listed_files(table: Path, column: str, allowed: list[Path]) -> None:
    """A table that lists files (data.path_column) may list only files the user may read."""
    try:
        frame = read_table(table)[0]
    except Exception:  # unreadable: the run's own data check says why, in words
        return
    if column not in frame.columns:
        return
    for value in frame[column].dropna().astype(str):
        listed = Path(value.strip()).expanduser()
        listed = (listed if listed.is_absolute() else table.parent / listed).resolve()
        if value.strip() and not _inside(listed, allowed):
            raise RecipeError(f"Recipe key 'data.path_column': the table lists {value.strip()[:100]!r}, which your "
                              "recipes may not read (only your own uploads and the bundled examples).")
