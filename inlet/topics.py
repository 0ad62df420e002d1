"""Topic and subject naming: the one place that decides what things are called on Kafka."""

from __future__ import annotations

import re

SCHEMAS_TOPIC = "_schemas"
CONNECTORS_TOPIC = "_inlet_connectors"
SAMPLES_TOPIC = "_inlet_samples"
PIPELINES_TOPIC = "_inlet_pipelines"
# What feed workers report per pipeline partition (delivered, lag, last error); compacted.
PIPELINE_STATUS_TOPIC = "_inlet_pipeline_status"
# The gateways' idempotency keys: claims, releases and acceptances (``gateway/dedup.py``).
DEDUP_TOPIC = "_inlet_dedup"


def connector_topic(connector_id: str) -> str:
    return f"inlet.{connector_id}"


def rejected_topic(connector_id: str) -> str:
    return f"inlet.{connector_id}.rejected"


# Every connector's topic and rejected topic (not its DLQs): what the sample worker follows.
CONNECTOR_TOPICS_PATTERN = r"^inlet\.(con_[0-9a-f]+)(\.rejected)?$"
_CONNECTOR_TOPICS = re.compile(CONNECTOR_TOPICS_PATTERN)


def parse_connector_topic(topic: str) -> tuple[str, bool] | None:
    """``(connector id, is the rejected topic)`` for a connector's topic; None for any other."""
    match = _CONNECTOR_TOPICS.match(topic)
    return None if match is None else (match.group(1), match.group(2) is not None)


def pipeline_dlq_topic(connector_id: str, pipeline_id: str) -> str:
    """Records a pipeline's sink could not take, with the reason in their headers."""
    return f"inlet.{connector_id}.dlq.{pipeline_id}"


def pipeline_group(pipeline_id: str) -> str:
    """The consumer group of a pipeline's workers: one per pipeline, shared by its instances."""
    return f"inlet-pipeline-{pipeline_id}"


def value_subject(topic: str) -> str:
    """Confluent's TopicNameStrategy: ``topic``'s value schema is under ``<topic>-value``."""
    return f"{topic}-value"


def connector_subject(connector_id: str) -> str:
    """The subject of a connector's record schemas (its topic's value subject)."""
    return value_subject(connector_topic(connector_id))
