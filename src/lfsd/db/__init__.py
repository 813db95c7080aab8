"""SQL metadata: users, tokens, repositories, grants and the object index (SQLAlchemy 2 async, Alembic)."""
