"""What runs only on a developer's machine, never in production: the supervisor of the local
run (`python -m services.local.supervisor`, started by deploy/local/run) and its machinery, the
sandboxes of the outside parties (`python -m services.local.sandbox provider|bank|chain`), the
demo data, the local run's webhook settings and a webhook receiver for trying webhooks on
loopback (`python -m services.local.webhook_receiver`). No process of the system imports it;
of the `otc` commands only `demo load` and `bench api` do, for the demo data."""
