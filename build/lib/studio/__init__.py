"""Studio: a no-code fine-tuning studio: adapt pretrained image, text, audio and chat models to your own data."""
import ctypes
import os
import sys

# Idle OpenMP threads sleep instead of spinning: beside the UI server and a browser on a small machine, spinning
# threads made each training step wait for descheduled peers (90 head-training steps took 10 s instead of 1.4 s).
# Set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# One malloc arena for the whole process (as MALLOC_ARENA_MAX=1). glibc gives each new thread its own arena and
# hands its freed memory back to the system, so a training thread faulted its activations in again at every step:
# full fine-tuning ran at 0.84-0.87 of a plain loop's speed, 1.02 with this (bench/run.py, 2 CPU cores).
# Set before other threads allocate.
if sys.platform.startswith("linux"):
    try:
        ctypes.CDLL(None).mallopt(-8, 1)  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        pass
