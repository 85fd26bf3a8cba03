"""The jobs run against the served lake of the service tests (a small world with a trained model)."""

from tests.serving.conftest import served_lake

__all__ = ["served_lake"]
