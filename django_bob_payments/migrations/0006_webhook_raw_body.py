import json

from django.db import migrations, models


def payload_to_body(apps, schema_editor):
    """Events stored before kept a parsed copy; their body is its JSON."""
    WebhookEvent = apps.get_model("bob_payments", "WebhookEvent")
    for event in WebhookEvent.objects.only("pk", "payload").iterator():
        body = json.dumps(event.payload, separators=(",", ":")).encode()
        WebhookEvent.objects.filter(pk=event.pk).update(body=body)


def body_to_payload(apps, schema_editor):
    WebhookEvent = apps.get_model("bob_payments", "WebhookEvent")
    for event in WebhookEvent.objects.only("pk", "body").iterator():
        WebhookEvent.objects.filter(pk=event.pk).update(payload=json.loads(bytes(event.body)))


class Migration(migrations.Migration):

    dependencies = [
        ('bob_payments', '0005_webhook_waiting'),
    ]

    operations = [
        migrations.AddField(
            model_name='webhookevent',
            name='body',
            field=models.BinaryField(default=b'', verbose_name='body as received'),
            preserve_default=False,
        ),
        migrations.RunPython(payload_to_body, body_to_payload),
        migrations.RemoveField(
            model_name='webhookevent',
            name='payload',
        ),
    ]
