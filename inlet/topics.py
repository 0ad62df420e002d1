"""Topic and subject naming: the one place that decides what things are called on Kafka."""

from __future__ import annotations

SCHEMAS_TOPIC = "_schemas"
CONNECTORS_TOPIC = "_inlet_connectors"
SAMPLES_TOPIC = "_inlet_samples"


def connector_topic(connector_id: str) -> str:
    return f"inlet.{connector_id}"


def rejected_topic(connector_id: str) -> str:
    return f"inlet.{connector_id}.rejected"


def value_subject(topic: str) -> str:
    """Confluent's TopicNameStrategy: ``topic``'s value schema is under ``<topic>-value``."""
    return f"{topic}-value"
