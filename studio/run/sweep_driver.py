"""Runs a sweep (studio/run/sweep.py): its runs one after another through the job manager (the normal queue, so a
sweep waits its turn like any run and shares the feature caches), each run's status and score written to sweep.json
as it changes. A grid runs its combinations in order; a search asks optuna (TPE) for each trial's settings,
reports every epoch's figure and stops a trial that falls below the median of the earlier trials at the same epoch
(optuna's MedianPruner): its status is then 'pruned'.

Resuming (`studio sweep --resume ID`, or the UI's own driver process) picks up where sweep.json stands: finished
runs stay, a run still training is followed again, a stopped or interrupted one is resumed from its checkpoint,
and the rest start. The driver is a process of its own when the UI starts a sweep (`spawn`), so the sweep goes on
if the browser or the UI goes away."""
from __future__ import annotations

import logging
import subprocess
import sys
import time
from typing import Callable

from studio.recipe import RecipeError
from studio.run.jobs import Job, JobManager
from studio.run.sweep import DONE, DRIVER_LOG, STOP_FILE, STUDY_FILE, Sweep, best, recipe_for, words
from studio.runfolder import identity, mark_interrupted
from studio.workspace import RunNotFound, Workspace

POLL_S = 0.5
# Trials before pruning starts: the median of fewer earlier trials says little.
PRUNER_STARTUP_TRIALS = 2


class Stopped(Exception):
    """The sweep was asked to stop."""


def distributions(params: dict) -> dict:
    """optuna's distribution for each searched key: a list is a choice, a range of whole numbers an integer."""
    import optuna.distributions as d
    out = {}
    for key, space in params.items():
        if isinstance(space, list):
            out[key] = d.CategoricalDistribution(space)
        elif all(isinstance(space[k], int) for k in ("low", "high")):
            out[key] = d.IntDistribution(space["low"], space["high"], log=bool(space.get("log")))
        else:
            out[key] = d.FloatDistribution(float(space["low"]), float(space["high"]), log=bool(space.get("log")))
    return out


class Driver:
    """say: where progress goes, one line at a time (the command line prints it; the UI's driver logs it)."""

    def __init__(self, workspace: Workspace, sweep: Sweep, manager: JobManager,
                 say: Callable[[str], None] = lambda line: None):
        self.workspace, self.sweep, self.manager, self.say = workspace, sweep, manager, say
        self.data: dict = {}

    def run(self) -> dict:
        """Runs the sweep to its end (or until asked to stop); returns sweep.json as it ends."""
        self.data = self.sweep.read()
        self.sweep.file(STOP_FILE).unlink(missing_ok=True)  # started or resumed: an earlier stop is over
        self.data.update(status="running", driver=identity(), message=None)
        self._save()
        try:
            self._grid() if self.data["kind"] == "grid" else self._search()
            self.data["status"] = "completed"
        except Stopped:
            self.data.update(status="stopped", message="Stopped by the user.")
        except Exception as exc:  # the sweep ends in words; its runs are left as they are
            self.data.update(status="failed", message=f"{type(exc).__name__}: {exc}")
            logging.getLogger(__name__).exception("sweep %s failed", self.sweep.id)
        self.data["best"] = best(self.data)
        self._save()
        return self.data

    def _save(self) -> None:
        self.sweep.write(self.data)

    # -- one run ----------------------------------------------------------------------------------------------------
    def _job(self, entry: dict) -> Job | None:
        """The entry's run: started now, or (resuming) the one it had, resumed if it was stopped or interrupted."""
        if entry["run_id"] is None:
            try:
                job = self.manager.start(recipe_for(self.data["recipe"], entry["settings"]),
                                         owner=self.data.get("owner"))  # sweeps from before accounts: none
            except RecipeError as exc:  # e.g. the data went away since the sweep was checked
                entry.update(status="failed", error=str(exc))
                self._save()
                return None
            entry.update(run_id=job.run_id, status="queued")
            self._save()
            self.say(f"run {entry['index'] + 1}/{self.data['total']} ({words(entry['settings'])}): {job.run_id}")
            return job
        try:
            job = self.manager.get(entry["run_id"])
        except RunNotFound:  # deleted since: this combination has no result
            entry.update(status="failed", error=f"Its run {entry['run_id']} was deleted.")
            self._save()
            return None
        if job.status.get("status") in ("cancelled", "interrupted"):
            job = self.manager.resume(entry["run_id"])
        return job

    def follow(self, entry: dict, prune: Callable[[dict], bool] | None = None) -> None:
        """Starts (or picks up) the entry's run and follows it to its end. prune(epoch event) → True stops it as
        pruned."""
        if self.sweep.stop_requested():
            raise Stopped
        job = self._job(entry)
        if job is None:
            return
        seen = 0
        while not job.done:
            if self.sweep.stop_requested():
                if self._end(job, entry, "cancelled"):
                    raise Stopped
                break  # it completed first: recorded below, then the sweep stops
            events = job.events(seen)
            seen += len(events)
            if prune and any(prune(e) for e in events if e["type"] == "epoch"):
                if self._end(job, entry, "pruned"):
                    return
                break  # it completed before the stop reached it: a completed trial
            state = job.status.get("status")
            if state == "running" and job.process is None and not self.manager.in_process:
                mark_interrupted([job.run.path])  # picked up on resume: its worker is not ours to wait on
            if state != entry["status"]:
                entry["status"] = state
                self._save()
            time.sleep(POLL_S)
        status = job.status
        entry.update(status=status.get("status"), score=status.get(self.data["metric"]["key"]),
                     wall_time_s=status.get("wall_time_s"), error=status.get("error"))
        self._save()
        score = "" if entry["score"] is None else f", {self.data['metric']['words']} {entry['score']:.4g}"
        self.say(f"run {entry['index'] + 1}/{self.data['total']} {entry['status']}{score}")
        if self.sweep.stop_requested():  # the stop reached the run before it reached this loop
            raise Stopped

    def _end(self, job: Job, entry: dict, status: str) -> bool:
        """Stops the entry's run and records it as `status`; False (nothing recorded) when the run completed before
        the stop reached it."""
        job.cancel()
        job.wait()
        if job.status.get("status") == "completed":
            return False
        entry.update(status=status, wall_time_s=job.status.get("wall_time_s"))
        self._save()
        self.say(f"run {entry['index'] + 1}/{self.data['total']} {status}")
        return True

    # -- the two kinds -----------------------------------------------------------------------------------------------
    def _grid(self) -> None:
        for entry in self.data["runs"]:
            if entry["status"] not in DONE:
                self.follow(entry)

    def _search(self) -> None:
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        metric, space = self.data["metric"], self.data["search"]
        study = optuna.create_study(
            study_name=self.sweep.id, storage=f"sqlite:///{self.sweep.file(STUDY_FILE)}", load_if_exists=True,
            direction="maximize" if metric["higher_is_better"] else "minimize",
            sampler=optuna.samplers.TPESampler(seed=int(self.data["recipe"].get("train", {}).get("seed", 0))),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=0))
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        for entry in self.data["runs"]:  # resuming: the trials left running
            if entry["status"] not in DONE:
                # optuna has no public way to reopen a running trial in another process: Trial(study, trial_id)
                self._trial(study, entry, optuna.trial.Trial(study, trials[entry["trial"]]._trial_id))
        while len(self.data["runs"]) < self.data["total"]:
            trial = study.ask(distributions(space["params"]))
            entry = {"index": len(self.data["runs"]), "settings": dict(trial.params), "trial": trial.number,
                     "run_id": None, "status": "pending", "score": None, "wall_time_s": None}
            self.data["runs"].append(entry)
            self._save()
            self._trial(study, entry, trial)

    def _trial(self, study, entry: dict, trial) -> None:
        from optuna.trial import TrialState
        key = self.data["metric"]["key"]

        def prune(event: dict) -> bool:
            # The linear probe (epoch 0) is the same for every trial; the last epoch saves nothing when stopped.
            value, epoch = event.get(key), event.get("epoch")
            if value is None or not epoch or epoch >= event.get("total_epochs", epoch + 1):
                return False
            trial.report(float(value), epoch)
            return trial.should_prune()

        self.follow(entry, prune)
        if entry["run_id"]:
            trial.set_user_attr("run_id", entry["run_id"])  # the study, read alone, names its runs
        if entry["status"] == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        elif entry["status"] == "completed" and entry["score"] is not None:
            study.tell(trial, float(entry["score"]))
        else:
            study.tell(trial, state=TrialState.FAIL)


def spawn(workspace: Workspace, sweep: Sweep) -> subprocess.Popen:
    """The sweep's driver in a process of its own (its own session: it outlives the UI that started it)."""
    log = open(sweep.file(DRIVER_LOG), "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "studio.cli", "--workspace", str(workspace.root), "sweep",
                                 "--resume", sweep.id], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()
