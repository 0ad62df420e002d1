"""Build settings beyond pyproject.toml: the gateway's one C extension.

``optional``: where it cannot be compiled (no C compiler), the install still succeeds and the
gateway writes Avro with fastavro instead, slower (inlet/codec/_avro_writer.py); ``make test``
fails when it is missing (tests/unit/test_avro_native.py).
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
        )
    ]
)
