"""/api/docs: the API described from its own OpenAPI document, as a page that needs nothing from the internet
(FastAPI's Swagger page loads its scripts from a CDN: blank on an offline machine)."""
from __future__ import annotations

import html

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

STYLE = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
         "code{background:#f1f5f9;padding:0 .3em;border-radius:4px}h3{margin-bottom:.2rem}.hint{color:#64748b}")


def operation(prefix: str, path: str, method: str, op: dict) -> str:
    params = [f"<code>{html.escape(p['name'])}</code> ({html.escape(p.get('in', ''))})"
              for p in op.get("parameters", [])]
    body = "<p class='hint'>Body: " + ", ".join(op["requestBody"]["content"]) + "</p>" if op.get("requestBody") \
        else ""
    return (f"<h3><code>{method.upper()} {html.escape(prefix + path)}</code></h3>"
            f"<p>{html.escape(op.get('summary', ''))}. {html.escape(op.get('description', ''))}</p>"
            + (f"<p class='hint'>Parameters: {', '.join(params)}</p>" if params else "") + body)


def page(api: FastAPI, prefix: str) -> str:
    spec = api.openapi()
    routes = "".join(operation(prefix, path, method, op)
                     for path, methods in spec["paths"].items() for method, op in methods.items())
    return (f"<!doctype html><meta charset='utf-8'><title>{html.escape(spec['info']['title'])}</title>"
            f"<style>{STYLE}</style><h1>{html.escape(spec['info']['title'])}</h1>"
            f"<p>{html.escape(spec['info'].get('description', ''))}</p>{routes}"
            f"<p class='hint'>The same, for tools: <a href='{prefix}/openapi.json'>{prefix}/openapi.json</a></p>")


def install(api: FastAPI, prefix: str) -> None:
    @api.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> str:
        return page(api, prefix)
