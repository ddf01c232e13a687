"""The engine: data, models, strategies, the training loop, jobs. It never imports gradio."""
