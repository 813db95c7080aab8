"""Names and paths compare byte for byte on MySQL/MariaDB too; lock refs as long as git allows.

MySQL and MariaDB create VARCHARs with the database's default collation, case- and accent-insensitive as a rule:
``ALICE`` logged in as ``alice`` and ``acme/Game`` was ``acme/game``, unlike on SQLite and PostgreSQL, whose
default collations already compare exactly (so there this is a no-op). ``utf8mb4_bin`` would still ignore trailing
spaces; MariaDB's ``utf8mb4_nopad_bin`` and MySQL 8's ``utf8mb4_0900_bin`` do not.

``locks.ref`` grows from 255 to 4096 characters: git allows a branch name as long as a path. SQLite enforces no
VARCHAR length, and rebuilding its ``locks`` table would reset the AUTOINCREMENT high-water mark (lock ids must
never be reused), so SQLite is left as it is.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_REF_LENGTH = 255
NEW_REF_LENGTH = 4096

# table -> (column, length before, length after, nullable); every column a request's text is compared with.
COLUMNS = {
    "users": [("name", 100, 100, False)],
    "tokens": [("digest", 64, 64, False)],
    "repos": [("path", 255, 255, False)],
    "locks": [
        ("path", 1024, 1024, False),
        ("path_key", 64, 64, False),
        ("ref", OLD_REF_LENGTH, NEW_REF_LENGTH, True),
    ],
}


def _is_mysql(bind: Connection) -> bool:
    return bind.dialect.name in ("mysql", "mariadb")


def _exact_collation(bind: Connection) -> str:
    # As lfsd.db.tables.exact_collation decides it (copied: a migration must not change when the code does).
    if getattr(bind.dialect, "is_mariadb", False):
        return "utf8mb4_nopad_bin"
    version = getattr(bind.dialect, "server_version_info", None) or (0,)
    return "utf8mb4_0900_bin" if version >= (8, 0) else "utf8mb4_bin"


def _modify_all(bind: Connection, charset: str, collation: str, *, widened: bool) -> None:
    for table, columns in COLUMNS.items():
        clauses = [
            f"MODIFY {name} VARCHAR({after if widened else before}) CHARACTER SET {charset} COLLATE {collation} "
            + ("NULL" if nullable else "NOT NULL")
            for name, before, after, nullable in columns
        ]
        bind.execute(sa.text(f"ALTER TABLE {table} " + ", ".join(clauses)))


def _shorten_refs() -> None:
    # A ref that no longer fits is dropped rather than cut: a truncated ref names another branch. Refs are only
    # informational on a lock.
    update = sa.text("UPDATE locks SET ref = NULL WHERE CHAR_LENGTH(ref) > :length")
    op.get_bind().execute(update, {"length": OLD_REF_LENGTH})


def upgrade() -> None:
    bind = op.get_bind()
    if _is_mysql(bind):
        _modify_all(bind, "utf8mb4", _exact_collation(bind), widened=True)
    elif bind.dialect.name == "postgresql":
        op.alter_column(
            "locks", "ref", type_=sa.String(NEW_REF_LENGTH), existing_type=sa.String(OLD_REF_LENGTH), nullable=True
        )


def downgrade() -> None:
    bind = op.get_bind()
    if _is_mysql(bind):
        _shorten_refs()
        # Back to what 0001 and 0002 created: columns in the database's default character set and collation.
        charset, collation = bind.execute(
            sa.text(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                "WHERE SCHEMA_NAME = DATABASE()"
            )
        ).one()
        _modify_all(bind, charset, collation, widened=False)
    elif bind.dialect.name == "postgresql":
        _shorten_refs()
        op.alter_column(
            "locks", "ref", type_=sa.String(OLD_REF_LENGTH), existing_type=sa.String(NEW_REF_LENGTH), nullable=True
        )
