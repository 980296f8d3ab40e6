"""Per-process config files: jinja2 templates in orchestrator/roles/ (one per process kind,
orchestrator/systems/base.py PROCESS_KINDS), validated before shipping.

Rendering and validation are one step: the text a node will read is parsed back with the
node's own config Struct here, so a template or flag mistake fails on the controller.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from nodes import config as node_config
from orchestrator.systems import PROCESS_KINDS

TEMPLATES = Path(__file__).parent / "roles"


def _quote(value: Any) -> str:
    # A JSON string is a valid TOML basic string: quotes and backslashes escaped.
    return json.dumps(str(value))


def _boolean(value: Any) -> str:
    return "true" if value else "false"


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)
_env.filters["q"] = _quote
_env.filters["b"] = _boolean


def render(kind: str, context: dict[str, Any]) -> str:
    """The config text for one process; raises ConfigError if it does not validate."""
    text = _env.get_template(f"{kind}.toml.j2").render(**context)
    node_config.parse(text, PROCESS_KINDS[kind].config,
                      source=f"{kind} config for {context.get('name')}")
    return text
