"""CareLoop telephony engine: SIP user agent, media (IVR, recording, bridging) and dialler.

The engine is a standalone asyncio process (``careloop engine``). It never imports Django or
any other CareLoop app; the application drives it through the versioned command API in
:mod:`careloop.engine.api` and receives typed events from :mod:`careloop.engine.events`.
See ``docs/engine.md``.
"""

API_VERSION = "v1"
ENGINE_VERSION = "1.0"
USER_AGENT = f"CareLoop-Engine/{ENGINE_VERSION}"
