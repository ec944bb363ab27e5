"""synthetic sample rows (no PHI) so the validation counts are not all zero"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute("INSERT INTO encounters (id) VALUES (1), (2), (3)")
    op.execute(
        "INSERT INTO notes (id, encounter_id, status) VALUES (1, 1, 'finalized'), (2, 2, 'finalized'), (3, 3, 'draft')"
    )
    op.execute(
        "INSERT INTO suggestions (note_id, created_at) VALUES (1, now()), (2, now()), (3, now() - INTERVAL '3 days')"
    )
    op.execute("SELECT setval(pg_get_serial_sequence('encounters', 'id'), 3)")
    op.execute("SELECT setval(pg_get_serial_sequence('notes', 'id'), 3)")


def downgrade() -> None:
    op.execute("DELETE FROM suggestions")
    op.execute("DELETE FROM notes")
    op.execute("DELETE FROM encounters")
