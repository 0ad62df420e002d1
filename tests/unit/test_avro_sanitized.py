"""The C writer's tests again, against a build under AddressSanitizer + UndefinedBehaviorSanitizer.

A use of freed memory or a signed overflow may pass unnoticed in the normal build (a wrong byte,
a wrapped number); under the sanitizers it stops the process with a report. So this test compiles
``_avro_native.c`` into its temporary directory with the flags the real build uses (this Python's
sysconfig and setup.py's ``extra_compile_args``) plus the sanitizers, and runs the hostile-object
cases and the differential fuzz against fastavro (fewer examples) in a Python that loads it.

The Python itself is not sanitized: the ASan runtime is preloaded (it must come first), Python's
own allocator is swapped for malloc so that ASan sees every object and list freed, and leak
detection is off (CPython keeps its objects until exit by design). ``-fno-wrapv`` undoes Python's
``-fwrapv``: CPython is built to wrap signed overflow, and UBSan must see it instead.

Needs gcc with its sanitizer runtimes (Debian: gcc pulls libgcc-<N>-dev, which brings libasan and
libubsan; ``scripts/ensure-sanitizers`` installs them); under CI=true their absence fails the test.
"""

from __future__ import annotations

import ast
import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
SANITIZE = [
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",  # the first report stops the process
    "-fno-omit-frame-pointer",
    "-fno-wrapv",
    "-O1",
]
# What runs under the sanitizers: every hostile case, the differential fuzz, and the writer's edge
# cases (decimals, a record that outgrows the first buffer).
TESTS = [
    "tests/unit/test_avro_hostile.py",
    "tests/unit/test_avro_differential.py",
    "tests/unit/test_avro_native.py::test_decimal_edges",
    "tests/unit/test_avro_native.py::test_records_larger_than_the_writers_first_buffer",
]

# Loads the sanitized module as inlet.codec._avro_native before anything imports the real one, runs
# pytest, then checks that the writer the tests used was that module's.
_RUN = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("inlet.codec._avro_native", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
sys.modules[spec.name] = module
import pytest
code = pytest.main(sys.argv[2:])
from inlet.codec import _avro_writer
if _avro_writer._NativeWriter is not module.Writer:
    sys.exit("the tests did not use the sanitized writer")
sys.exit(code)
"""


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"cannot build the sanitized C writer: {reason} (scripts/ensure-sanitizers)")
    pytest.skip(f"cannot build the sanitized C writer: {reason}")


def _setup_extension() -> tuple[list[str], list[str]]:
    """The sources and extra_compile_args of setup.py's one Extension, read from its text."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Extension":
            sources = ast.literal_eval(node.args[1])
            options = {kw.arg: kw.value for kw in node.keywords}
            return sources, ast.literal_eval(options["extra_compile_args"])
    raise AssertionError("setup.py has no Extension(...)")


def _runtime(compiler: str, library: str) -> str:
    try:
        found = subprocess.run(
            [compiler, f"-print-file-name={library}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"{compiler} does not answer: {exc}")
    if not Path(found).is_absolute() or not Path(found).exists():  # gcc echoes unknown names
        _unavailable(f"{compiler} has no {library}")
    return found


def build(out_dir: Path) -> tuple[Path, str]:
    """The sanitized extension, and the ASan runtime to preload."""
    config = sysconfig.get_config_vars()
    compiler = shlex.split(config["CC"])
    if "gcc" not in Path(compiler[0]).name:
        _unavailable(f"this Python builds extensions with {config['CC']!r}, not gcc")
    asan = _runtime(compiler[0], "libasan.so")
    _runtime(compiler[0], "libubsan.so")
    sources, extra = _setup_extension()
    target = out_dir / "inlet" / "codec" / f"_avro_native{config['EXT_SUFFIX']}"
    target.parent.mkdir(parents=True)
    objects = []
    for source in sources:
        obj = out_dir / (Path(source).stem + ".o")
        flags = [*shlex.split(config["CFLAGS"]), *shlex.split(config["CCSHARED"])]
        include = f"-I{sysconfig.get_paths()['include']}"
        _run([*compiler, *flags, *extra, *SANITIZE, include, "-c", str(ROOT / source), "-o", obj])
        objects.append(str(obj))
    _run([*shlex.split(config["LDSHARED"]), *SANITIZE, *objects, "-o", str(target)])
    return target, asan


def _run(command: list[str | Path]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, f"{shlex.join(map(str, command))}\n{done.stderr}"
    assert "warning" not in done.stderr, done.stderr  # -Wall -Wextra, as setup.py builds it


def test_the_c_writer_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    module, asan = build(tmp_path / "build")
    env = {
        **os.environ,
        "LD_PRELOAD": asan,
        "ASAN_OPTIONS": "detect_leaks=0",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        "PYTHONMALLOC": "malloc",
        "PYTHONUNBUFFERED": "1",
        "AVRO_WRITER_SANITIZED": "1",  # fewer fuzz examples (test_avro_differential.py)
    }
    pytest_args = [
        "-v",  # each test named as it starts: a report that stops the process follows its name
        "--capture=sys",  # not fd: a sanitizer's report on fd 2 must outlive the process it stops
        "-p",
        "no:cacheprovider",
        f"--basetemp={tmp_path / 'pytest'}",
        *TESTS,
    ]
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(module), *pytest_args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    report = f"stdout:\n{done.stdout[-6000:]}\nstderr:\n{done.stderr[-12000:]}"
    assert done.returncode == 0, report
    assert "Sanitizer" not in done.stderr, report
    assert " passed" in done.stdout, report
