from tortoise import migrations
from tortoise.migrations import operations as ops
from intake.store.models import PartyRole
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('intake', '0004_event_html')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Party',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('intake.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='parties', on_delete=OnDelete.CASCADE)),
                ('role', fields.CharEnumField(description='REPORTER: reporter\nTEAM: team\nREPORTED: reported\nWITNESS: witness\nOTHER: other', enum_type=PartyRole, max_length=16)),
                ('email', fields.CharField(max_length=320)),
                ('name', fields.CharField(default='', max_length=200)),
                ('member', fields.ForeignKeyField('intake.TeamMember', source_field='member_id', null=True, db_constraint=True, to_field='id', related_name='parties', on_delete=OnDelete.SET_NULL)),
                ('excluded', fields.BooleanField(default=False)),
                ('excluded_reason', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'party', 'app': 'intake', 'indexes': [Index(fields=['ticket_id', 'email'])], 'pk_attr': 'id', 'table_description': 'Someone a case talks with, each with a signed reply address of their own: the reporter,'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='OutboundMessage',
            name='party',
            field=fields.ForeignKeyField('intake.Party', source_field='party_id', null=True, db_constraint=True, to_field='id', related_name='outbound', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Ticket',
            name='first_response_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Ticket',
            name='refers_to',
            field=fields.ForeignKeyField('intake.Ticket', source_field='refers_to_id', null=True, db_constraint=True, to_field='id', related_name='referred_by', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Ticket',
            name='resolution',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Ticket',
            name='resolution_reason',
            field=fields.TextField(default='', db_default='', unique=False),
        ),
        ops.AddField(
            model_name='Ticket',
            name='resolved_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Ticket',
            name='resolved_by',
            field=fields.CharField(null=True, max_length=320),
        ),
        ops.AddField(
            model_name='TicketEvent',
            name='party',
            field=fields.ForeignKeyField('intake.Party', source_field='party_id', null=True, db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.SET_NULL),
        ),
    ]
