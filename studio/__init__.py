"""Studio: a no-code fine-tuning studio for image and text classifiers."""
import os

# Idle OpenMP threads sleep instead of spinning: beside the UI server and a browser on a small machine, spinning
# threads made each training step wait for descheduled peers (90 head-training steps took 10 s instead of 1.4 s).
# Set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
