"""`studio serve-model`: finished runs served to other programs over HTTP — chat runs through OpenAI's API
(/v1/models, /v1/chat/completions), classifiers through /v1/classify. Each served model stays loaded and has a
scheduler thread of its own that batches its waiting requests into one generate call."""
