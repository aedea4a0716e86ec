from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('intake', '0012_lookups')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RetentionPolicy',
            fields=[
                ('fingerprint', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('in_force_since', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'retention_policy', 'app': 'intake', 'pk_attr': 'fingerprint', 'table_description': 'Each retention policy the scheduled purge has met on this database (by fingerprint):'},
            bases=['Model'],
        ),
    ]
