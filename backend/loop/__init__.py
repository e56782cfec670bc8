"""The annotation loop with Label Studio: webhook events in (``events``), the ranked queue out (``sync``, the
``push`` job), and what webhooks missed read back (``catchup``); the ``push`` and ``catchup`` job handlers live in
``jobs``. The protocol itself (configs, payloads, predictions, the API client) is ``backend.labelstudio``."""
