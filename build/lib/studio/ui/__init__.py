"""The browser UI: gradio Blocks, one module per tab. It reads and writes recipes and run folders, and starts runs
through the engine's job API; it never touches tensors."""
