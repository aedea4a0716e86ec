from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('intake', '0011_records')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Attachment',
            index=Index(fields=['ticket_id']),
        ),
        ops.AddIndex(
            model_name='InboundMessage',
            index=Index(fields=['ticket_id']),
        ),
        ops.AddIndex(
            model_name='OutboundMessage',
            index=Index(fields=['ticket_id']),
        ),
        ops.AddIndex(
            model_name='Party',
            index=Index(fields=['email']),
        ),
        ops.AddIndex(
            model_name='Party',
            index=Index(fields=['role', 'ticket_id']),
        ),
        ops.AddIndex(
            model_name='Ticket',
            index=Index(fields=['reporter_email']),
        ),
        ops.AddIndex(
            model_name='TicketEvent',
            index=Index(fields=['ticket_id', 'created_at']),
        ),
        # On SQLite, the AlterFields of 0003 and 0009 rebuilt outbound_message without its
        # index (tortoise's table remake does not carry indexes over). Under the name tortoise
        # gives it, so that on PostgreSQL, which kept it, this does nothing.
        ops.RunSQL(
            'CREATE INDEX IF NOT EXISTS "idx_outbound_me_state_c97b6c"'
            ' ON "outbound_message" ("state", "next_attempt_at")',
            reverse_sql="SELECT 1",
        ),
    ]
