import ssl
from typing import Any, Literal

from aiokafka.structs import ConsumerRecord, TopicPartition

class AIOKafkaConsumer:
    # No key_deserializer/value_deserializer: Inlet decodes bytes itself, so records carry bytes.
    def __init__(
        self,
        *topics: str,
        bootstrap_servers: str | list[str] = ...,
        client_id: str = ...,
        group_id: str | None = ...,
        auto_offset_reset: Literal["earliest", "latest", "none"] = ...,
        enable_auto_commit: bool = ...,
        isolation_level: Literal["read_uncommitted", "read_committed"] = ...,
        security_protocol: str = ...,
        sasl_mechanism: str = ...,
        sasl_plain_username: str | None = ...,
        sasl_plain_password: str | None = ...,
        ssl_context: ssl.SSLContext | None = ...,
    ) -> None: ...
    _client: Any  # the connection manager (tests look at its security settings)
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool: ...
    async def position(self, partition: TopicPartition) -> int: ...
    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = ..., max_records: int | None = ...
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]: ...
