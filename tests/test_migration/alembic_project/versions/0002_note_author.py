"""note author"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.execute("ALTER TABLE notes ADD COLUMN author text")


def downgrade():
    op.execute("ALTER TABLE notes DROP COLUMN author")
