import ssl
from typing import Any

class AIOKafkaProducer:
    def __init__(
        self,
        *,
        bootstrap_servers: str | list[str] = ...,
        client_id: str = ...,
        security_protocol: str = ...,
        sasl_mechanism: str = ...,
        sasl_plain_username: str | None = ...,
        sasl_plain_password: str | None = ...,
        ssl_context: ssl.SSLContext | None = ...,
    ) -> None: ...
    client: Any
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
