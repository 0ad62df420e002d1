import asyncio
import random as random

class Fetcher:
    # The background fetch task: done once it ended (cancelled, failed or returned).
    @property
    def error_future(self) -> asyncio.Task[None]: ...
