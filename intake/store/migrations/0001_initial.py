from tortoise import migrations
from tortoise.migrations import operations as ops
from intake.store.models import EventKind, InboundState, OutboundState, TicketStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='MailboxState',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('mailbox', fields.CharField(max_length=500)),
                ('folder', fields.CharField(max_length=500)),
                ('uidvalidity', fields.BigIntField()),
                ('last_uid', fields.BigIntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'mailbox_state', 'app': 'intake', 'unique_together': (('mailbox', 'folder'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TeamMember',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('email', fields.CharField(unique=True, max_length=320)),
                ('name', fields.CharField(max_length=200)),
                ('roles', fields.CharField(default='member', max_length=200)),
                ('active', fields.BooleanField(default=True)),
            ],
            options={'table': 'team_member', 'app': 'intake', 'pk_attr': 'id', 'table_description': 'Synced from settings at start. Members who left stay as inactive rows.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Ticket',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ref', fields.CharField(unique=True, max_length=32)),
                ('kind', fields.CharField(max_length=32)),
                ('status', fields.CharEnumField(default=TicketStatus.NEW, description='NEW: new\nINVESTIGATING: investigating\nWAITING: waiting\nRESOLVED: resolved\nCLOSED: closed', enum_type=TicketStatus, max_length=16)),
                ('subject', fields.TextField(default='', unique=False)),
                ('reporter_email', fields.CharField(max_length=320)),
                ('reporter_name', fields.CharField(default='', max_length=200)),
                ('assignee', fields.ForeignKeyField('intake.TeamMember', source_field='assignee_id', null=True, db_constraint=True, to_field='id', related_name='tickets', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('acknowledged_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'ticket', 'app': 'intake', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InboundMessage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('raw_bytes', fields.BinaryField()),
                ('size', fields.IntField()),
                ('sha256', fields.CharField(unique=True, max_length=64)),
                ('message_id', fields.CharField(null=True, db_index=True, max_length=998)),
                ('mailbox', fields.CharField(max_length=500)),
                ('folder', fields.CharField(max_length=500)),
                ('uidvalidity', fields.BigIntField(null=True)),
                ('uid', fields.BigIntField(null=True)),
                ('source_ref', fields.CharField(null=True, max_length=500)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('state', fields.CharEnumField(default=InboundState.PENDING, description='PENDING: pending\nDONE: done\nFAILED: failed', enum_type=InboundState, max_length=16)),
                ('outcome', fields.CharField(null=True, max_length=32)),
                ('reason', fields.TextField(default='', unique=False)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('processed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ticket', fields.ForeignKeyField('intake.Ticket', source_field='ticket_id', null=True, db_constraint=True, to_field='id', related_name='inbound', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'inbound_message', 'app': 'intake', 'unique_together': (('mailbox', 'folder', 'uidvalidity', 'uid'),), 'indexes': [Index(fields=['state', 'next_attempt_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboundMessage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=64)),
                ('sender', fields.CharField(max_length=320)),
                ('recipients', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('message_id', fields.CharField(unique=True, max_length=998)),
                ('subject', fields.TextField(unique=False)),
                ('raw_bytes', fields.BinaryField()),
                ('state', fields.CharEnumField(default=OutboundState.QUEUED, description='QUEUED: queued\nSENT: sent\nFAILED: failed', enum_type=OutboundState, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ticket', fields.ForeignKeyField('intake.Ticket', source_field='ticket_id', null=True, db_constraint=True, to_field='id', related_name='outbound', on_delete=OnDelete.SET_NULL)),
                ('in_reply_to', fields.ForeignKeyField('intake.InboundMessage', source_field='in_reply_to_id', null=True, db_constraint=True, to_field='id', related_name='replies', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'outbound_message', 'app': 'intake', 'indexes': [Index(fields=['state', 'next_attempt_at'])], 'pk_attr': 'id', 'table_description': 'The transactional outbox. One row per email, rendered once, sent by the delivery job.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TicketEvent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('intake.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='INBOUND: inbound\nOUTBOUND: outbound\nNOTE: note\nSTATE: state', enum_type=EventKind, max_length=16)),
                ('author', fields.CharField(max_length=320)),
                ('body', fields.TextField(default='', unique=False)),
                ('internal', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('inbound', fields.ForeignKeyField('intake.InboundMessage', source_field='inbound_id', null=True, db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.SET_NULL)),
                ('outbound', fields.ForeignKeyField('intake.OutboundMessage', source_field='outbound_id', null=True, db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'ticket_event', 'app': 'intake', 'pk_attr': 'id', 'table_description': "One entry of a case's thread."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Attachment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('intake.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='attachments', on_delete=OnDelete.CASCADE)),
                ('event', fields.ForeignKeyField('intake.TicketEvent', source_field='event_id', null=True, db_constraint=True, to_field='id', related_name='attachments', on_delete=OnDelete.SET_NULL)),
                ('filename', fields.TextField(unique=False)),
                ('content_type', fields.CharField(max_length=255)),
                ('size', fields.IntField()),
                ('sha256', fields.CharField(db_index=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'attachment', 'app': 'intake', 'pk_attr': 'id', 'table_description': 'Metadata only. The bytes live content-addressed under the data directory.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TicketSequence',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('prefix', fields.CharField(max_length=16)),
                ('year', fields.IntField()),
                ('last_number', fields.IntField(default=0)),
            ],
            options={'table': 'ticket_sequence', 'app': 'intake', 'unique_together': (('prefix', 'year'),), 'pk_attr': 'id', 'table_description': 'Per prefix and year, the last number handed out, so references never repeat.'},
            bases=['Model'],
        ),
    ]
