"""Build settings beyond pyproject.toml: the C extensions, the Avro writer and the Avro reader.

``optional``: where they cannot be compiled (no C compiler), the install still succeeds and the
gateway writes Avro (inlet/codec/_avro_writer.py), the pipeline feeds read it
(inlet/codec/_avro_reader.py), with fastavro instead, slower; ``make test`` fails when either is
missing (tests/unit/test_avro_native.py, tests/unit/test_avro_reader.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "inlet.codec._avro_native",
            ["inlet/codec/_avro_native.c"],
            extra_compile_args=[
                "-O2",
                "-std=gnu11",
                "-Wall",
                "-Wextra",
                "-Wno-missing-field-initializers",
            ],
            optional=True,
        ),
        # The same flags (test_avro_sanitized.py reads the writer's, literally, from this text).
        Extension(
            "inlet.codec._avro_native_reader",
            ["inlet/codec/_avro_native_reader.c"],
            extra_compile_args=[
                "-O2",
                "-std=gnu11",
                "-Wall",
                "-Wextra",
                "-Wno-missing-field-initializers",
            ],
            optional=True,
        ),
    ]
)
