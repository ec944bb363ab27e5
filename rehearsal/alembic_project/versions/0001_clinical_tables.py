"""encounters, notes (with status) and suggestions (with created_at)"""

from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE encounters (id serial PRIMARY KEY, started_at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute(
        "CREATE TABLE notes (id serial PRIMARY KEY, encounter_id integer NOT NULL REFERENCES encounters (id), "
        "status text NOT NULL CHECK (status IN ('draft', 'finalized')))"
    )
    op.execute(
        "CREATE TABLE suggestions (id serial PRIMARY KEY, note_id integer NOT NULL REFERENCES notes (id), "
        "created_at timestamptz NOT NULL DEFAULT now())"
    )


def downgrade() -> None:
    op.execute("DROP TABLE suggestions")
    op.execute("DROP TABLE notes")
    op.execute("DROP TABLE encounters")
