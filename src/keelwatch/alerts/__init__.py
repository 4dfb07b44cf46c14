"""Response: alerts on new exposure, severity-driven deadlines, delivery that never loses an alert.

``engine.raise_alerts`` decides (one alert per advisory and image, from the stored findings, the
suppressions and the running inventory) and queues messages in the outbox in the same
transaction; ``outbox.deliver`` sends them through the channels (``channels/``, one per file).
"""
