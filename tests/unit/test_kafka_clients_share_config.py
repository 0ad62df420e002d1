"""No module builds a Kafka client from settings of its own: every config comes from inlet.kafka.

An AST scan of the shipped code (and the benchmarks): each call that makes a client must get its
config from ``client_config``, ``producer_config`` or ``aiokafka_config`` imported from
``inlet.kafka``, directly or through a local variable, an attribute of ``self`` or a method whose
every ``return`` does. A raw dict, a parameter or anything else is reported.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("inlet", "gateway", "registry", "consumers", "deploy", "bench")
CLIENTS = frozenset(
    {
        "Producer",
        "Consumer",
        "AdminClient",
        "SerializingProducer",
        "DeserializingConsumer",
        "AIOKafkaConsumer",
        "AIOKafkaProducer",
        "AIOKafkaClient",
        "AsyncProducer",  # inlet.kafka's wrapper: its callers hand it the config
        "TransactionalProducer",  # inlet.transactions' wrapper: likewise
        "GroupCommitProducer",  # and its wrapper of that one
    }
)
BUILDERS = frozenset({"client_config", "producer_config", "aiokafka_config"})
# (file, enclosing function): where a client is built from a config its callers made.
WRAPPERS = {
    ("inlet/kafka.py", "AsyncProducer.__init__"),
    ("inlet/transactions.py", "TransactionalProducer.open"),
    ("inlet/transactions.py", "GroupCommitProducer.__init__"),
}

Scope = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class Site:
    path: str
    line: int
    client: str
    ok: bool


class _Module:
    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.tree = ast.parse(source)
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self.builders = set(BUILDERS) if path == "inlet/kafka.py" else set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module == "inlet.kafka":
                self.builders |= {a.asname or a.name for a in node.names if a.name in BUILDERS}

    def enclosing(self, node: ast.AST, *kinds: type[ast.AST]) -> ast.AST | None:
        parent = self.parents.get(node)
        while parent is not None and not isinstance(parent, kinds):
            parent = self.parents.get(parent)
        return parent

    def function(self, node: ast.AST) -> Scope | None:
        found = self.enclosing(node, ast.FunctionDef, ast.AsyncFunctionDef)
        return found if isinstance(found, ast.FunctionDef | ast.AsyncFunctionDef) else None

    def qualname(self, node: ast.AST) -> str:
        function = self.function(node)
        if function is None:
            return "<module>"
        cls = self.enclosing(function, ast.ClassDef)
        return f"{cls.name}.{function.name}" if isinstance(cls, ast.ClassDef) else function.name

    def traces(self, expr: ast.expr, seen: frozenset[int] = frozenset()) -> bool:
        """Whether ``expr`` is (only ever) a config made by one of inlet.kafka's builders."""
        if id(expr) in seen:
            return False
        seen |= {id(expr)}
        if isinstance(expr, ast.Call):
            name = _name(expr.func)
            if name in self.builders:
                return True
            if name == "dict" and len(expr.args) == 1:
                return self.traces(expr.args[0], seen)
            returns = self._returns_of(expr)
            return bool(returns) and all(self.traces(r, seen) for r in returns)
        if isinstance(expr, ast.Name):
            values = self._assigned(expr, expr.id)
            return bool(values) and all(self.traces(v, seen) for v in values)
        if (
            isinstance(expr, ast.Attribute)
            and isinstance(expr.value, ast.Name)
            and expr.value.id == "self"
        ):
            values = self._self_assigned(expr, expr.attr)
            return bool(values) and all(self.traces(v, seen) for v in values)
        return False

    def _assigned(self, at: ast.AST, name: str) -> list[ast.expr]:
        """What ``name`` is assigned in the function around ``at`` (a parameter: nothing)."""
        return [
            value
            for node in ast.walk(self.function(at) or self.tree)
            for target, value in _assignments(node)
            if isinstance(target, ast.Name) and target.id == name
        ]

    def _self_assigned(self, at: ast.AST, attr: str) -> list[ast.expr]:
        """What ``self.<attr>`` is assigned anywhere in the class around ``at``."""
        return [
            value
            for node in ast.walk(self.enclosing(at, ast.ClassDef) or self.tree)
            for target, value in _assignments(node)
            if isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "self"
            and target.attr == attr
        ]

    def _returns_of(self, call: ast.Call) -> list[ast.expr]:
        """The return values of the function or ``self`` method ``call`` calls, if it is ours."""
        func = call.func
        where: ast.AST | None = self.tree
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id != "self":
                return []
            where = self.enclosing(call, ast.ClassDef)
        name = _name(func)
        for node in ast.walk(where or self.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                return [
                    r.value
                    for r in ast.walk(node)
                    if isinstance(r, ast.Return) and r.value is not None
                ]
        return []

    def sites(self) -> list[Site]:
        found = []
        for node in ast.walk(self.tree):
            if not (isinstance(node, ast.Call) and _name(node.func) in CLIENTS):
                continue
            client = _name(node.func)
            if (self.path, self.qualname(node)) in WRAPPERS:
                continue
            # librdkafka clients take the config positionally; aiokafka's take it as **kwargs.
            configs = [*node.args[:1], *(k.value for k in node.keywords if k.arg is None)]
            connection = {"bootstrap_servers", "security_protocol", "ssl_context"}
            spelled_here = any(k.arg in connection for k in node.keywords)
            ok = bool(configs) and not spelled_here and all(self.traces(c) for c in configs)
            found.append(Site(self.path, node.lineno, client, ok))
        return found


def _assignments(node: ast.AST) -> list[tuple[ast.expr, ast.expr]]:
    """(target, value) for an assignment statement; nothing for any other node."""
    if isinstance(node, ast.Assign):
        return [(target, node.value) for target in node.targets]
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return [(node.target, node.value)]
    return []


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _scan(path: str, source: str) -> list[Site]:
    return _Module(path, source).sites()


def _all_sites() -> list[Site]:
    sites = []
    for package in SCANNED:
        for file in sorted((ROOT / package).rglob("*.py")):
            relative = file.relative_to(ROOT).as_posix()
            sites.extend(_scan(relative, file.read_text()))
    return sites


def test_every_kafka_client_gets_its_config_from_inlet_kafka() -> None:
    sites = _all_sites()
    wrong = [f"{s.path}:{s.line} {s.client}(...)" for s in sites if not s.ok]
    assert wrong == [], "Kafka clients built without inlet.kafka's config: " + ", ".join(wrong)
    # The scan really sees the clients it is about (a scan that finds nothing passes vacuously).
    seen = {(s.path, s.client) for s in sites}
    assert {
        ("inlet/statelog/kafka.py", "AIOKafkaConsumer"),
        ("inlet/statelog/kafka.py", "TransactionalProducer"),
        ("inlet/statelog/kafka.py", "AdminClient"),
        ("inlet/kafka.py", "AdminClient"),
        ("gateway/_produce_lanes.py", "AsyncProducer"),
        ("registry/replay.py", "Consumer"),
        ("consumers/_feed.py", "Consumer"),
        ("deploy/broker.py", "AdminClient"),
    } <= seen
    assert len(sites) >= 15


def test_the_scan_reports_a_client_built_from_settings_of_its_own() -> None:
    source = """
from confluent_kafka import Producer
from aiokafka import AIOKafkaConsumer
from inlet.kafka import aiokafka_config, client_config

def raw():
    return Producer({"bootstrap.servers": "k:9092"})

def via_variable(settings):
    config = {"bootstrap.servers": "k:9092"}
    return Producer(config)

def from_a_parameter(config):
    return Producer(config)

async def aio_spelled_here():
    return AIOKafkaConsumer(bootstrap_servers="k:9092")

async def aio_plus_own_protocol(settings):
    return AIOKafkaConsumer(security_protocol="SSL", **aiokafka_config(settings, client_id="x"))

class Reader:
    def __init__(self, settings):
        self._config = aiokafka_config(settings, client_id="x")
        self._raw = {"bootstrap.servers": "k:9092"}

    def _built(self):
        return client_config(self._settings, client_id="y")

    async def good(self):
        return AIOKafkaConsumer(**self._config), Producer(self._built())

    def bad(self):
        return Producer(self._raw)
"""
    verdicts = sorted((s.line, s.ok) for s in _scan("example.py", source))
    assert verdicts == [
        (7, False),
        (11, False),
        (14, False),
        (17, False),
        (20, False),
        (31, True),
        (31, True),
        (34, False),
    ]
