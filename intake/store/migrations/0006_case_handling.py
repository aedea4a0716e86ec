from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('intake', '0005_conversations')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Reminder',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('intake.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='reminders', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=64)),
                ('sent_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'reminder', 'app': 'intake', 'unique_together': (('ticket', 'kind'),), 'pk_attr': 'id', 'table_description': 'A deadline message sent for a case, so that each is sent once (`kind` names the deadline'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Ticket',
            name='kind_reason',
            field=fields.TextField(default='', db_default='', unique=False),
        ),
        ops.AddField(
            model_name='Ticket',
            name='resolution_ends_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Ticket',
            name='urgent',
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
