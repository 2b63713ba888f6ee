"""``ps019 demo`` (placeholder while being written)."""

# Values for the examples' secret config (`secure:` in their Pulumi.<stack>.yaml), used by the demo, the committed
# exports and the tests. They are fake, and the tests prove none of them is ever printed.
DEMO_SECRET_CONFIG = {
    "web-service": {"web-service:dbPassword": "demo-only-Pg-7f3a9c2e51"},
    "deploy-role": {"deploy-role:deploySecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYdemoONLY01"},
}
