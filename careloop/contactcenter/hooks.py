"""Other apps' handlers for engine events about legs the contact center does not own.

The engine has one webhook (``/cc/engine/events/``). Apps that place their own calls — automated
follow-up calls, campaigns — register a handler in their ``AppConfig.ready``; each event of a
batch is offered to the handlers in order before the contact center looks at it. A handler
returns True when the event was about one of its calls (nobody else then sees it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EventHandler = Callable[[dict[str, Any]], bool]
_handlers: list[EventHandler] = []


def register_event_handler(handler: EventHandler) -> None:
    if handler not in _handlers:
        _handlers.append(handler)


def offer(event: dict[str, Any]) -> bool:
    """Give ``event`` to the registered handlers; True when one of them took it."""
    return any(handler(event) for handler in list(_handlers))
