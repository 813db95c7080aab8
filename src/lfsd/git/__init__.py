"""Git hosting: bare repositories on disk and the real git processes that serve them (core and stdlib only)."""
