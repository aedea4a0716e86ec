from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('intake', '0007_inbound_arrival')]

    initial = False

    operations = [
        ops.CreateModel(
            name='JobLease',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=500)),
                ('holder', fields.CharField(max_length=200)),
                ('until', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'job_lease', 'app': 'intake', 'pk_attr': 'name', 'table_description': 'A job (or a piece of one) that one daemon at a time may run: whoever holds the lease'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='OutboundMessage',
            name='claimed_by',
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.AddField(
            model_name='OutboundMessage',
            name='claimed_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
