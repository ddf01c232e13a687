"""The engine, task-neutral: the training loop and its callbacks, several processes, devices, the data readers,
the learning-rate range test, what exports and model cards share. It never imports gradio."""
import os

# Tokenisers must not spawn threads of their own beside training and its data-loader processes.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
