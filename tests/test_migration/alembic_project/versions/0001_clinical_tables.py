"""clinical tables"""

from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.execute("CREATE TABLE encounters (id serial PRIMARY KEY)")
    op.execute("CREATE TABLE notes (id serial PRIMARY KEY, status text NOT NULL)")
    op.execute(
        "CREATE TABLE suggestions (id serial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())"
    )


def downgrade():
    op.execute("DROP TABLE suggestions")
    op.execute("DROP TABLE notes")
    op.execute("DROP TABLE encounters")
