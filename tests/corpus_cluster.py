"""The bad-input corpus of clusters (studio --cluster ADDRESS, $STUDIO_CLUSTER): each fault of the cluster issue
with what is done, the words the studio must say (regular expressions, case-insensitive, matched against the
message with its whitespace joined) and how it must end.

`proof` says which test shows it: "here" for the cheap cases tests/test_corpus_cluster.py runs (against the test
session's Ray head, or an address where nothing listens), else the test (FILE::NAME) that does, with its own Ray
processes (a head it restarts, a node with another install or its own copy of the workspace) or a run that trains
on the shared head. Those tests check their words with said() against this table.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

REFUSED = "refused"  # exit code 2 from the command line (a ClusterError from the job manager); nothing queued
INTERRUPTED = "interrupted, resumable"  # the run's status; Resume completes it
HERE = "here"


@dataclass(frozen=True)
class ClusterCase:
    id: str
    done: str
    expect: tuple[str, ...]
    end: str
    proof: str


CASES = [
    ClusterCase("nothing-listening", "studio --cluster http://127.0.0.1:FREE_PORT train recipe.yaml",
                (r"No Ray cluster answers at http://127\.0\.0\.1:\d+", r"ray start --head", r"http://HOST:8265"),
                REFUSED, HERE),
    ClusterCase("nothing-listening-env", "$STUDIO_CLUSTER=http://127.0.0.1:FREE_PORT, no --cluster: studio train, "
                "studio serve and python launch.py",
                (r"No Ray cluster answers at http://127\.0\.0\.1:\d+",), REFUSED, HERE),
    ClusterCase("gpus-lacking", "a recipe with train.device: cuda on the test head (2 CPUs, no GPU)",
                (r"asks for 1 CPUs and 1 GPUs on one node", r"largest node has 2 CPUs and 0 GPUs"), REFUSED, HERE),
    ClusterCase("devices-lacking", "a recipe with train.devices: 3 on the test head (2 CPUs in all)",
                (r"asks for 3 CPUs and 0 GPUs in all \(3 devices", r"the cluster has 2 CPUs and 0 GPUs"),
                REFUSED, HERE),
    ClusterCase("incompatible-version", "a node joined from another install (it reports torch 0.0.1)",
                (r"Node \S+ \([0-9a-f]{8}\) runs studio \S+, torch 0\.0\.1, ray \S+ but this machine runs",
                 r"every node must run the same versions"), REFUSED,
                "tests/test_ray_faults.py::"
                "test_a_node_with_another_install_is_refused_in_words_naming_it_and_the_versions"),
    ClusterCase("workspace-not-shared", "a node that sees its own tmpfs at the workspace's path",
                (r"The workspace \S+ is not visible on node \S+ \([0-9a-f]{8}\)", r"put it on a shared filesystem"),
                REFUSED, "tests/test_ray_checks.py::test_a_node_that_does_not_see_the_workspace_is_refused_in_words"),
    ClusterCase("job-killed-on-node", "the run's worker SIGKILLed on its node while it trains",
                (r"The run's job on the cluster ended while it was in progress \(Ray reports the job FAILED",
                 r"Resume it to continue from its last checkpoint"), INTERRUPTED,
                "tests/test_ray_cluster.py::"
                "test_a_killed_worker_leaves_the_run_interrupted_and_it_resumes_as_a_new_job"),
    ClusterCase("job-stopped-from-outside", "`ray job stop` (Ray's stop_job) of a run's job, not through the studio",
                (r"Stopped from outside the studio \(a signal to its process: `ray job stop`",
                 r"Resume it to continue from its last checkpoint"), INTERRUPTED,
                "tests/test_ray_cluster.py::"
                "test_a_killed_worker_leaves_the_run_interrupted_and_it_resumes_as_a_new_job"),
    ClusterCase("head-restarted", "the head killed while a run trains, then started again at the same address",
                (r"ended while it was in progress \(the cluster's head was restarted and no longer knows the job\)",
                 r"Resume it to continue from its last checkpoint"), INTERRUPTED,
                "tests/test_ray_faults.py::test_a_run_whose_head_restarts_is_interrupted_and_resumes_on_the_new_head"),
]
BY_ID = {case.id: case for case in CASES}


def said(case_id: str, words: str) -> None:
    """Asserts the words hold every expression of the case."""
    flat = " ".join(words.split())
    for pattern in BY_ID[case_id].expect:
        assert re.search(pattern, flat, re.IGNORECASE), f"{case_id}: /{pattern}/ not in: {flat}"
