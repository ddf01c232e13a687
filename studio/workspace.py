"""The workspace on disk: run folders, the feature cache, unpacked uploads. The run folder is the truth: everything
here is read back from disk, so a restarted studio sees every run."""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from studio.recipe import Recipe
from studio.runfolder import STATUS, read_json

DEFAULT_WORKSPACE = "workspace"


def default_root() -> Path:
    return Path(os.environ.get("STUDIO_WORKSPACE", DEFAULT_WORKSPACE))


# Where the libraries would otherwise write (the home folder's caches, /tmp/gradio): inside the workspace instead.
CACHE_VARIABLES = {
    "HF_HUB_CACHE": "huggingface/hub",  # models downloaded from the Hugging Face hub
    "HF_XET_CACHE": "huggingface/xet",
    "HF_ASSETS_CACHE": "huggingface/assets",
    "HF_MODULES_CACHE": "huggingface/modules",  # code of models the user trusts (trust_remote_code)
    "HF_DATASETS_CACHE": "huggingface/datasets",  # the datasets library's own files (tokenised examples)
    "TORCH_HOME": "torch",  # torchvision's ImageNet weights
    "GRADIO_TEMP_DIR": "gradio",  # the browser's uploads before the studio copies them
    "MPLCONFIGDIR": "matplotlib",  # matplotlib (imported by gradio) keeps a font list
    "STUDIO_CONVERTED_CACHE": "models",  # offline models converted from their packages' format, once
}


def confine_caches(root: str | Path) -> dict[str, str]:
    """Points the libraries' download caches and gradio's upload folder inside <workspace>/cache, so that every
    file the studio writes is inside its workspace. A cache the environment already names (HF_HOME, HF_HUB_CACHE,
    TORCH_HOME, ...: say, an administrator's shared cache) is kept. Takes effect only before huggingface_hub,
    torch.hub and gradio first read these variables, so the command line calls it first. Returns what it set."""
    cache = Path(root).expanduser().resolve() / "cache"
    chosen = {}
    for name, sub in CACHE_VARIABLES.items():
        if os.environ.get(name) or (name.startswith("HF_") and os.environ.get("HF_HOME")):
            continue
        chosen[name] = os.environ[name] = str(cache / sub)
    return chosen


# What every run's summary holds (None until the run says): its identity, and the figures of the runs lists.
SUMMARY_KEYS = ("task", "model", "strategy", "created", "wall_time_s", "error", "world_size", "data_name",
                "stopped_early", "accuracy", "macro_f1", "owner")


class RunNotFound(LookupError):
    pass


def new_dir(base: Path, stem: str) -> Path:
    """A new folder `stem` under base, or `stem-2`, `stem-3`… when it exists (two started in the same second)."""
    for n in range(1, 10_000):
        candidate = base / (stem if n == 1 else f"{stem}-{n}")
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a folder {stem} in {base}")


@dataclass
class Workspace:
    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser().resolve()

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache" / "features"

    @property
    def models_dir(self) -> Path:
        """Models the studio converts once (weights shipped as GGUF in a package, say) and then loads fast."""
        return self.root / "cache" / "models"

    @property
    def datasets_dir(self) -> Path:
        """Tokenised examples, cached by the datasets library."""
        return self.root / "cache" / "datasets"

    @property
    def general_loss_cache(self) -> Path:
        """Base models' loss on the bundled general text, measured once per model (the chat tasks' evaluation)."""
        return self.root / "cache" / "general-loss.json"

    @property
    def session_key(self) -> Path:
        """The key that encrypts the browser sessions of this workspace's studio."""
        return self.root / "cache" / "ui-session-key"

    @property
    def spare_worker_log(self) -> Path:
        return self.root / "cache" / "spare-worker.log"

    @property
    def recipes_dir(self) -> Path:
        """Recipes the UI wrote for download."""
        return self.root / "recipes"

    @property
    def mlflow_uri(self) -> str:
        """The MLflow tracking store runs report to unless their recipe names another (train.mlflow_tracking_uri)."""
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        """The MLflow runs' files (models, eval.json), never the folder the studio was started in."""
        return self.root / "mlartifacts"

    @property
    def trackio_dir(self) -> Path:
        return self.root / "trackio"

    @property
    def uploads_dir(self) -> Path:
        return self.root / "uploads"

    def user_uploads_dir(self, user: str | None) -> Path:
        """One user's uploads (their data files; no one else's recipe may read them), or the shared uploads folder
        in a studio without accounts (user None). Under users/, so no name can stand for one of the shared folders
        the UI keeps beside them (files/, classes/, …)."""
        return self.uploads_dir / "users" / user if user else self.uploads_dir

    def explanations_dir(self, run: str) -> Path:
        """Explanations' pictures of a run's answers (`studio explain`, the Playground's Explain)."""
        return self.root / "explanations" / run

    def serving_dir(self, run: str) -> Path:
        """A model server's files for a run served from the UI: its API key (mode 0600) and its log."""
        return self.root / "serving" / run

    @property
    def sweeps_dir(self) -> Path:
        """One folder per sweep (several settings of one recipe tried): its sweep.json, its optuna study."""
        return self.root / "sweeps"

    @property
    def own_folders(self) -> tuple[str, ...]:
        """The workspace's own folders, beside the runs': never an output_dir."""
        return tuple(dict.fromkeys(p.relative_to(self.root).parts[0] for p in (
            self.cache_dir, self.recipes_dir, self.mlflow_artifacts, self.trackio_dir, self.uploads_dir,
            self.explanations_dir("x"), self.serving_dir("x"), self.sweeps_dir)))

    def new_run_dir(self, recipe: Recipe) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(recipe.model.rstrip("/\\")).name or recipe.model).strip("-.")
        return new_dir(self.root / recipe.output_dir, f"{time.strftime('%Y%m%d-%H%M%S')}-{slug[:40]}-{recipe.strategy}")

    def run_dirs(self) -> list[Path]:
        found = [p.parent for p in self.root.glob(f"*/*/{STATUS}")]
        return sorted(found, key=lambda p: p.name)

    def runs(self) -> list[dict]:
        """One summary per run folder, oldest first: its status.json (the worker's process left out) with the keys
        every run has."""
        out = []
        for run_dir in self.run_dirs():
            status = read_json(run_dir / STATUS) or {}
            figures = {k: v for k, v in status.items() if k not in ("pid", "pid_started", "run_id")}
            out.append({**dict.fromkeys(SUMMARY_KEYS), **figures, "id": run_dir.name, "path": str(run_dir),
                        "status": status.get("status", "unknown")})
        return out

    def find_run(self, ref: str) -> Path:
        """A run by id (folder name) or by path."""
        path = Path(ref).expanduser()
        if (path / STATUS).exists():
            return path.resolve()
        matches = [p for p in self.run_dirs() if p.name == ref]
        if not matches:
            raise RunNotFound(f"No run called '{ref}' in {self.root}. `studio runs` lists the runs.")
        return matches[-1]
