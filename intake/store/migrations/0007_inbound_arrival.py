from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('intake', '0006_case_handling')]

    initial = False

    operations = [
        ops.AddField(
            model_name='InboundMessage',
            name='arrived_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
