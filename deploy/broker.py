"""A real Apache Kafka broker (KRaft, combined broker + controller) from Maven Central jars.

``LocalKafka`` resolves the jars pinned in ``deploy/kafka/pom.xml`` with Maven into a user cache
(first start only), formats storage, starts one JVM per node and waits until a metadata request
shows every node. One node is the default; three give a cluster with replication factor 3 and
``min.insync.replicas=2``. Every JVM is stopped on ``stop()``, and also dies with its parent
process (Linux parent-death signal), so no broker outlives Inlet.

Ports: given ``first_port``, the nodes take it and the ports after it (a port taken is an error);
without, ports outside the kernel's ephemeral range are picked, and a start whose picked port
another server took first (a JVM cannot be handed a bound socket) tries again on new ones.

Clients speak PLAINTEXT to it. For the tests, ``sasl_users`` adds a second, SASL_PLAINTEXT
listener that knows those users by PLAIN and by SCRAM-SHA-256 (``sasl_bootstrap_servers``), so
that Inlet's clients can be seen authenticating against a real broker.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from inlet.kafka import client_config
from inlet.process import die_with_parent, spare_ports
from inlet.settings import Settings

log = logging.getLogger("inlet.deploy")

_HERE = Path(__file__).resolve().parent / "kafka"
POM = _HERE / "pom.xml"
LOG4J_CONFIG = _HERE / "log4j2.properties"


# Start-up on a loaded machine is mostly the JVM compiling Kafka's code: with the client compiler
# only (C1), a node answers in about half the time (on the 2-core machine at load 14-16, medians
# of 4 runs: 9.3 s -> 5.0 s from scratch, 8.7 s -> 5.7 s on existing data). The price is peak
# throughput, which a local broker for development and tests does not need; benchmarks pass
# quick_start=False. The serial collector and a small initial heap start lighter than G1.
_QUICK_START_FLAGS = (
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xms64m",
    "-XX:-UsePerfData",  # no hsperfdata file in /tmp
)


class BrokerError(RuntimeError):
    pass


class PortTaken(BrokerError):
    """A node could not bind one of its ports: another process listens there."""


# With picked ports (``first_port=None``), how many sets of ports a start tries: another process
# can bind a picked port before the JVM does (a JVM's listeners and controller quorum cannot be
# handed bound sockets), though never by an outgoing connection (``spare_ports``).
_PORT_ATTEMPTS = 4
# What Kafka logs (in server.log) when a listener's port is taken.
_PORT_TAKEN = "Address already in use"


def resolve_jars(cache_dir: Path, *, quiet: bool = False) -> Path:
    """The directory of Kafka's jars, resolved with Maven on first use and cached after.

    ``quiet``: the two lines about it are logged at DEBUG (for tests), not INFO.
    """
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    libs = cache_dir / f"kafka-{digest}" / "libs"
    if libs.is_dir() and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) is needed once to fetch Kafka's jars; "
            "install it, or set KAFKA_BOOTSTRAP_SERVERS"
        )
    # One line before and one after, not Maven's hundreds of download lines: -q, --batch-mode and
    # --no-transfer-progress; what it printed is shown only when it failed.
    level = logging.DEBUG if quiet else logging.INFO
    log.log(
        level,
        "fetching Kafka jars from Maven Central (first start only)…",
        extra={"into": str(libs)},
    )
    started = time.monotonic()
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=cache_dir))
    cmd = [
        mvn,
        "-q",
        "--batch-mode",
        "--no-transfer-progress",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(
        cmd,
        check=False,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_die_with_us(),
    )
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise BrokerError(
            f"mvn could not resolve Kafka's jars (exit {result.returncode}): {result.stdout or ''}"
        )
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(libs)  # atomic: a half-downloaded set is never mistaken for a cache
    log.log(level, "Kafka jars fetched", extra={"seconds": round(time.monotonic() - started, 1)})
    return libs


def _die_with_us() -> Callable[[], None]:
    """A ``preexec_fn``: the child gets SIGTERM when this process dies, even before it started."""
    return functools.partial(die_with_parent, signal.SIGTERM, parent=os.getpid())


@dataclass
class _Node:
    node_id: int
    port: int
    controller_port: int
    directory: Path
    sasl_port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    log_start: int = 0  # where this start's lines begin in server.log (it is appended to)

    def port_taken(self) -> bool:
        """Whether this start of the node logged that one of its ports was taken."""
        try:
            with (self.directory / "server.log").open("rb") as log:
                log.seek(self.log_start)
                return _PORT_TAKEN.encode() in log.read()
        except OSError:
            return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class LocalKafka:
    """A local KRaft cluster of ``nodes`` combined broker/controller JVMs."""

    def __init__(
        self,
        *,
        data_dir: Path | None,
        cache_dir: Path,
        nodes: int = 1,
        first_port: int | None = 9092,
        heap: str = "512m",
        quiet: bool = False,
        sasl_users: Mapping[str, str] | None = None,
        quick_start: bool = True,
        pick_ports: Callable[[int], list[int]] = spare_ports,
    ) -> None:
        if nodes not in (1, 3):
            raise BrokerError("a local cluster has 1 or 3 nodes")
        self.ephemeral = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="inlet-kafka-")) if data_dir is None else data_dir
        )
        self.cache_dir = cache_dir
        self.heap = heap
        self.quiet = quiet
        self.quick_start = quick_start
        self.sasl_users = dict(sasl_users or {})
        # Given a first port, the nodes use it and those after it, and a port taken is an error;
        # without, ports are picked (``pick_ports``, outside the kernel's ephemeral range), and a
        # start whose picked port was taken tries again on new ones.
        self._pick_ports = pick_ports if first_port is None else None
        ports = (
            pick_ports(self._ports_needed(nodes))
            if first_port is None
            else list(range(first_port, first_port + self._ports_needed(nodes)))
        )
        self.nodes = [_Node(i + 1, 0, 0, self.data_dir / f"node-{i + 1}") for i in range(nodes)]
        self._assign(ports)
        self._libs: Path | None = None

    def _ports_needed(self, nodes: int) -> int:
        return nodes * (3 if self.sasl_users else 2)

    def _assign(self, ports: list[int]) -> None:
        count = len(self.nodes)
        for i, node in enumerate(self.nodes):
            node.port, node.controller_port = ports[2 * i], ports[2 * i + 1]
            if self.sasl_users:
                node.sasl_port = ports[2 * count + i]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @property
    def sasl_bootstrap_servers(self) -> str | None:
        """The SASL_PLAINTEXT listeners (PLAIN, SCRAM-SHA-256), when ``sasl_users`` were given."""
        if not self.sasl_users:
            return None
        return ",".join(f"127.0.0.1:{n.sasl_port}" for n in self.nodes)

    def _properties(self, node: _Node) -> str:
        count = len(self.nodes)
        replication = min(3, count)
        min_isr = 2 if count >= 3 else 1
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        listeners = {
            "PLAINTEXT": f"PLAINTEXT://127.0.0.1:{node.port}",
            "CONTROLLER": f"CONTROLLER://127.0.0.1:{node.controller_port}",
        }
        protocols = {"PLAINTEXT": "PLAINTEXT", "CONTROLLER": "PLAINTEXT"}
        if node.sasl_port is not None:
            listeners["SASL"] = f"SASL://127.0.0.1:{node.sasl_port}"
            protocols["SASL"] = "SASL_PLAINTEXT"
        settings: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": ",".join(listeners.values()),
            "advertised.listeners": ",".join(v for k, v in listeners.items() if k != "CONTROLLER"),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(f"{k}:{v}" for k, v in protocols.items()),
            "log.dirs": node.directory / "data",
            "num.partitions": 1,
            "default.replication.factor": replication,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replication,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replication,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": 0,
            # Losing one broker of three must not cost a sender its answer: every request spreads
            # over all partitions, and a dead broker's partitions move to a new leader only once
            # the controller fences it, a session timeout after its last heartbeat (Kafka's
            # default: 9 s; with metadata refresh, 11-13 s, past the gateway's 10 s deadline).
            # 4 s keeps it well inside; heartbeats every 0.5 s leave a loaded machine eight
            # chances before a live broker would be fenced. A follower that stops fetching leaves
            # the ISR (so acks=all stops waiting for it) after 6 s instead of 30 s.
            "broker.session.timeout.ms": 4000,
            "broker.heartbeat.interval.ms": 500,
            "replica.lag.time.max.ms": 6000,
            # A dead controller is replaced within about 3 s (these are Kafka's defaults, kept
            # here because the deadline above depends on them).
            "controller.quorum.fetch.timeout.ms": 2000,
            "controller.quorum.election.timeout.ms": 1000,
            # Inlet creates every topic it uses on purpose; a typo must not make a new one.
            "auto.create.topics.enable": "false",
            "controlled.shutdown.enable": "true",
        }
        if node.sasl_port is not None:
            # PLAIN users are listed in the JAAS line; SCRAM ones are in the metadata log,
            # written by the storage format (--add-scram, in _prepare).
            plain_users = " ".join(f'user_{u}="{p}"' for u, p in self.sasl_users.items())
            settings |= {
                "listener.name.sasl.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
                "listener.name.sasl.plain.sasl.jaas.config": (
                    f"org.apache.kafka.common.security.plain.PlainLoginModule required "
                    f"{plain_users};"
                ),
                "listener.name.sasl.scram-sha-256.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                ),
            }
        return "".join(f"{k}={v}\n" for k, v in settings.items())

    def _cluster_id(self) -> str:
        path = self.data_dir / "cluster.id"
        if path.exists():
            return path.read_text().strip()
        # Kafka's cluster ids are 16 random bytes, base64url without padding.
        import base64  # noqa: PLC0415 - used only when a cluster is first made

        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(cluster_id)
        return cluster_id

    def _java(self, node: _Node, main: str, *args: str) -> list[str]:
        assert self._libs is not None
        java = shutil.which("java")
        if java is None:
            raise BrokerError(
                "Java 17+ is needed to run the local Kafka broker (or set KAFKA_BOOTSTRAP_SERVERS)"
            )
        return [
            java,
            f"-Xmx{self.heap}",
            *(_QUICK_START_FLAGS if self.quick_start else ("-XX:+UseG1GC",)),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={node.directory}",
            f"-Dkafka.node.id={node.node_id}",
            "-cp",
            f"{self._libs}/*",
            main,
            *args,
        ]

    def _prepare(self, node: _Node) -> Path:
        node.directory.mkdir(parents=True, exist_ok=True)
        config = node.directory / "server.properties"
        config.write_text(self._properties(node))
        if not (node.directory / "data" / "meta.properties").exists():
            cmd = self._java(
                node,
                "kafka.tools.StorageTool",
                "format",
                # "=" form: a generated id may start with "-", which would read as an option.
                f"--cluster-id={self._cluster_id()}",
                "-c",
                str(config),
                *(
                    arg
                    for user, password in self.sasl_users.items()
                    for arg in ("--add-scram", f"SCRAM-SHA-256=[name={user},password={password}]")
                ),
            )
            result = subprocess.run(
                cmd,
                check=False,
                capture_output=True,
                text=True,
                preexec_fn=_die_with_us(),
            )
            if result.returncode != 0:
                raise BrokerError(
                    f"formatting node {node.node_id} failed: {result.stdout}{result.stderr}"
                )
        return config

    def start(self, timeout_s: float = 90.0) -> str:
        """Start every node and return the bootstrap servers once all of them answer."""
        self._libs = resolve_jars(self.cache_dir, quiet=self.quiet)
        attempt = 1
        while True:
            for node in self.nodes:
                self.start_node(node.node_id, wait=False)
            try:
                self.wait_ready(timeout_s)
            except PortTaken as exc:
                if self._pick_ports is None or attempt == _PORT_ATTEMPTS:
                    raise
                log.info("a picked port was taken; new ports", extra={"error": str(exc)})
                self._stop_nodes(timeout_s=10.0)
                self._assign(self._pick_ports(self._ports_needed(len(self.nodes))))
                attempt += 1
                continue
            return self.bootstrap_servers

    def start_node(self, node_id: int, *, wait: bool = True, timeout_s: float = 60.0) -> None:
        node = self.nodes[node_id - 1]
        if node.process is not None and node.process.poll() is None:
            return
        config = self._prepare(node)
        node.log_start = _size(node.directory / "server.log")
        node.process = subprocess.Popen(
            self._java(node, "kafka.Kafka", str(config)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches Inlet, which then stops the broker in order
            preexec_fn=_die_with_us(),  # noqa: PLW1509 - only prctl and getppid
        )
        log.info(
            "kafka node started",
            extra={"node": node_id, "port": node.port, "pid": node.process.pid},
        )
        if wait:
            self.wait_ready(timeout_s)

    def stop_node(self, node_id: int, *, timeout_s: float = 30.0, kill: bool = False) -> None:
        node = self.nodes[node_id - 1]
        process, node.process = node.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Until a metadata request lists every running node (ready means really answering)."""
        # The local broker's own PLAINTEXT listener: no user settings but where it listens.
        settings = Settings(kafka_bootstrap_servers=self.bootstrap_servers)
        admin = AdminClient(
            client_config(
                settings,
                client_id="inlet-broker-ready",
                **{"socket.connection.setup.timeout.ms": 2000},
            )
        )
        expected = {n.node_id for n in self.nodes if n.process is not None}
        deadline = time.monotonic() + timeout_s
        while True:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    error = PortTaken if node.port_taken() else BrokerError
                    raise error(
                        f"kafka node {node.node_id} exited ({node.process.returncode}); "
                        f"see {node.directory / 'server.log'}"
                    )
            try:
                brokers = set(admin.list_topics(timeout=2).brokers)
            except KafkaException:
                brokers = set()
            if expected <= brokers:
                return
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"kafka not ready after {timeout_s:.0f}s (nodes up: {sorted(brokers)})"
                )
            time.sleep(0.2)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every node (all at once, so the quorum settles) and drop ephemeral data.

        A node still running after ``timeout_s`` is killed: what it wrote is in the OS's page
        cache already, and Kafka recovers its logs at the next start (a slower start, no loss).
        """
        self._stop_nodes(timeout_s)
        if self.ephemeral:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _stop_nodes(self, timeout_s: float) -> None:
        running = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        for node in running:
            assert node.process is not None
            node.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for node in running:
            assert node.process is not None
            try:
                node.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
        for node in self.nodes:
            node.process = None

    def pids(self) -> list[int]:
        return [
            n.process.pid for n in self.nodes if n.process is not None and n.process.poll() is None
        ]

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def env_cache_dir() -> Path:
    return Path(os.environ.get("INLET_CACHE_DIR") or Path.home() / ".cache" / "inlet")
