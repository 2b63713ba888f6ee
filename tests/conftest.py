"""Shared test set-up. Fixtures live one area per module in tests/plugins/ (each owned by that area)."""

import os
import pkgutil

import tests.plugins as _plugins

# No test may reach the instance-metadata address or a real AWS endpoint.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_var, None)

pytest_plugins = [f"tests.plugins.{m.name}" for m in pkgutil.iter_modules(_plugins.__path__)]
