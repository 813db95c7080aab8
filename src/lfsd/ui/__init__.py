"""The web UI under ``/ui/``: server-rendered pages over the same core use cases as the CLI and the API.

Loaded only when ``LFSD_UI`` is on (the default): ``lfsd.ui_root`` imports it, ``lfsd.app`` imports that lazily.
"""
