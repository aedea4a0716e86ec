from tortoise import migrations
from tortoise.migrations import operations as ops
from intake.store.models import OutboundState
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('intake', '0008_cluster')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='OutboundMessage',
            name='state',
            field=fields.CharEnumField(default=OutboundState.QUEUED, description='QUEUED: queued\nSENT: sent\nFAILED: failed\nBOUNCED: bounced\nCANCELLED: cancelled', enum_type=OutboundState, max_length=16),
        ),
    ]
