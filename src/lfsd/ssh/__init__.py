"""The SSH front end: it translates SSH commands into the core's use cases, as ``http/`` does requests."""
