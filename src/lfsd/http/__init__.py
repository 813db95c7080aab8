"""The only package that knows HTTP: it translates requests into core calls and errors into LFS responses."""
