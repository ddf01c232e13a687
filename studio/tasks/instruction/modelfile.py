"""The Ollama Modelfile beside a GGUF export: FROM the file, the template's stop tokens, the run's system prompt,
and the chat template in Ollama's Go-template syntax for the three kinds it can be written for (ChatML, Llama 3,
Mistral); for any other template a comment says so, and Ollama falls back on the template in the GGUF's metadata.
`ollama create NAME -f Modelfile` in the folder makes it a model Ollama serves."""
from __future__ import annotations

from dataclasses import dataclass

FILE = "Modelfile"


@dataclass(frozen=True)
class TemplateKind:
    name: str
    marker: str  # a piece of the Jinja chat template that only this kind writes
    stops: tuple[str, ...]  # what ends an answer (and what must never be written inside one)
    template: str  # Ollama's Go template: its messages, then the assistant's turn opened


CHATML = TemplateKind("ChatML", "<|im_start|>", ("<|im_start|>", "<|im_end|>"), (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n"
    "{{ .Content }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n"))
LLAMA3 = TemplateKind("Llama 3", "<|start_header_id|>", ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"), (
    "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
    "{{ .Content }}<|eot_id|>\n"
    "{{- end }}<|start_header_id|>assistant<|end_header_id|>\n\n"))
MISTRAL = TemplateKind("Mistral", "[INST]", ("[INST]", "[/INST]"), (
    "{{- range $index, $_ := .Messages }}\n"
    "{{- if eq .Role \"user\" }}\n"
    "{{- if and (eq (len (slice $.Messages $index)) 1) $.System }}[INST] {{ $.System }}\n\n"
    "{{ .Content }}[/INST]\n"
    "{{- else }}[INST] {{ .Content }}[/INST]\n"
    "{{- end }}\n"
    "{{- else if eq .Role \"assistant\" }} {{ .Content }}</s>\n"
    "{{- end }}\n"
    "{{- end }}"))
KINDS = (LLAMA3, CHATML, MISTRAL)


def template_kind(chat_template: str | None) -> TemplateKind | None:
    return next((k for k in KINDS if chat_template and k.marker in chat_template), None)


def _quoted(text: str) -> str:
    """Ollama's multi-line string: three double quotes, which the text itself must not hold."""
    return '"""' + text.replace('"""', '" " "') + '"""'


def text(gguf_name: str, chat_template: str | None, eot: str, system_prompt: str = "") -> str:
    kind = template_kind(chat_template)
    stops = list(kind.stops) if kind else []
    if eot and eot not in stops:
        stops.append(eot)  # the token the run learnt to end its answers with
    lines = ["# Ollama Modelfile written by the studio: ollama create NAME -f Modelfile", f"FROM ./{gguf_name}"]
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    if system_prompt:
        lines.append(f"SYSTEM {_quoted(system_prompt)}")
    if kind:
        lines.append(f"# TEMPLATE: the run's {kind.name} chat template in Ollama's Go-template syntax")
        lines.append(f"TEMPLATE {_quoted(kind.template)}")
    else:
        lines.append("# TEMPLATE: not written: this model's chat template is not ChatML, Llama 3 or Mistral, and "
                     "the studio cannot translate other Jinja templates into Ollama's syntax. Ollama reads the one in "
                     "the GGUF file's metadata (tokenizer.chat_template) when it recognises it; otherwise add a "
                     "TEMPLATE line by hand.")
    return "\n".join(lines) + "\n"
