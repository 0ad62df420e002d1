"""deploy/broker.py: persistent data across restarts, a 3-node cluster, no JVM left behind, a start
that survives a picked port taken by another process."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from deploy.broker import LocalKafka, env_cache_dir
from inlet.process import listening_socket, spare_ports

pytestmark = pytest.mark.kafka


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes; only a running process counts.
    return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def _consume_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                values.append(msg.value() or b"")
            if len(values) >= expected:
                break
    finally:
        consumer.close()
    return values


def test_data_survives_a_restart_and_no_jvm_is_left(tmp_path: Path) -> None:
    broker = LocalKafka(data_dir=tmp_path, cache_dir=env_cache_dir(), first_port=None, quiet=True)
    bootstrap = broker.start()
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the topic exists
        admin.create_topics([NewTopic("kept")])["kept"].result(30)
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        producer.produce("kept", b"before-restart")
        assert producer.flush(30) == 0
        pids = broker.pids()
    finally:
        broker.stop()
    assert pids
    assert not any(_alive(pid) for pid in pids)

    again = LocalKafka(data_dir=tmp_path, cache_dir=env_cache_dir(), first_port=None, quiet=True)
    bootstrap = again.start()
    try:
        assert _consume_all(bootstrap, "kept", 1) == [b"before-restart"]
    finally:
        again.stop()


def test_three_node_cluster_replicates_with_min_insync_two(tmp_path: Path) -> None:
    broker = LocalKafka(
        data_dir=None, cache_dir=env_cache_dir(), nodes=3, first_port=None, heap="384m", quiet=True
    )
    bootstrap = broker.start()
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("replicated", num_partitions=1)])["replicated"].result(30)
        # The broker that answers may learn of the new topic a moment after the create returned.
        deadline = time.monotonic() + 30
        while "replicated" not in (metadata := admin.list_topics(timeout=10)).topics:
            assert time.monotonic() < deadline, "the new topic never showed in the metadata"
            time.sleep(0.1)
        assert len(metadata.brokers) == 3
        assert len(metadata.topics["replicated"].partitions[0].replicas) == 3
        # One node down: two in-sync replicas remain, so acks=all still succeeds.
        broker.stop_node(3)
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        delivered: list[object] = []
        producer.produce("replicated", b"x", on_delivery=lambda err, _m: delivered.append(err))
        assert producer.flush(60) == 0
        assert delivered == [None]
    finally:
        broker.stop()


@pytest.mark.parametrize("taken", ["client", "controller"])
def test_a_start_whose_picked_port_is_taken_tries_new_ports(taken: str) -> None:
    """Another process can bind a picked port before the JVM does (a JVM cannot be handed a
    bound socket): the node fails to bind, and the start goes on with new ports."""
    with listening_socket() as occupied:
        port = occupied.getsockname()[1]
        picked: list[list[int]] = []

        def pick(count: int) -> list[int]:
            ports = spare_ports(count)
            if not picked:  # the first set: the port someone else holds
                ports[0 if taken == "client" else 1] = port
            picked.append(ports)
            return ports

        broker = LocalKafka(
            data_dir=None, cache_dir=env_cache_dir(), first_port=None, quiet=True, pick_ports=pick
        )
        try:
            bootstrap = broker.start()
            assert len(picked) == 2, picked
            assert port not in (broker.nodes[0].port, broker.nodes[0].controller_port)
            metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30)
            assert list(metadata.brokers) == [1]
        finally:
            broker.stop()
