from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('intake', '0009_outbound_cancelled')]

    initial = False

    operations = [
        ops.CreateModel(
            name='JobRun',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=100)),
                ('succeeded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('error', fields.TextField(default='', unique=False)),
                ('holder', fields.CharField(default='', max_length=200)),
            ],
            options={'table': 'job_run', 'app': 'intake', 'pk_attr': 'name', 'table_description': 'The last outcome of each daemon job, whichever daemon ran it: what `intake check` and'},
            bases=['Model'],
        ),
    ]
