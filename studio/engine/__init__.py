"""The engine: data, models, strategies, the training loop, jobs. It never imports gradio."""
import os

# Tokenisers must not spawn threads of their own beside the trainer thread and data-loader processes.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
