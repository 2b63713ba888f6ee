"""Resource-based policy controls (PS019-RBP-0NN): bucket, repository, key, queue, topic, secret, event bus and REST
API policies and Lambda permissions; one control per module, fixtures beside them (docs/controls-iam.md)."""
