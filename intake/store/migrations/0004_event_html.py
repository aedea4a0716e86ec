from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('intake', '0003_outbound_bounced')]

    initial = False

    operations = [
        ops.AddField(
            model_name='TicketEvent',
            name='html',
            field=fields.TextField(default='', db_default='', unique=False),
        ),
    ]
