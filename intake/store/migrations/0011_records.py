from tortoise import migrations
from tortoise.migrations import operations as ops
from intake.store.models import AuditAction
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('intake', '0010_job_runs')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('intake.Ticket', source_field='ticket_id', null=True, db_constraint=True, to_field='id', related_name='audit', on_delete=OnDelete.SET_NULL)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor', fields.CharField(max_length=320)),
                ('action', fields.CharEnumField(description='READ: read\nEXPORT: export\nEMAIL: email\nPURGE: purge\nERASE: erase', enum_type=AuditAction, max_length=16)),
                ('what', fields.TextField(unique=False)),
                ('why', fields.TextField(default='', unique=False)),
            ],
            options={'table': 'audit_event', 'app': 'intake', 'indexes': [Index(fields=['ticket_id', 'at'])], 'pk_attr': 'id', 'table_description': 'One entry of the audit trail: who saw or changed what of a case, when and why. Emails'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Ticket',
            name='closed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Ticket',
            name='purged_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        # Cases closed before closed_at existed: when `#status closed` was recorded, else the
        # last change, so the retention clock does not start earlier than the real closing.
        ops.RunSQL(
            "UPDATE ticket SET closed_at = COALESCE("
            "(SELECT MAX(e.created_at) FROM ticket_event e WHERE e.ticket_id = ticket.id"
            " AND e.kind = 'state' AND e.body LIKE 'status % -> closed'), updated_at)"
            " WHERE status = 'closed'",
            reverse_sql="UPDATE ticket SET closed_at = NULL",
        ),
    ]
