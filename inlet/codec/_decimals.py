"""Whether a Decimal fits an Avro ``decimal(precision, scale)``, and in words why not.

One source of these answers and messages for everything that checks a decimal: the fastavro
fallback writer (``_avro_writer``), the field-by-field check (``_record_errors``) and the C writer,
which parses decimals itself but imports ``decimal_problem`` from here for the message of a
refusal, so a refused record reads the same whichever writer refused it.
"""

from __future__ import annotations

import decimal
from functools import cache


def unscaled_decimal(value: decimal.Decimal, precision: int, scale: int) -> int:
    """``value`` times 10**scale as an int, when ``value`` fits decimal(precision, scale) exactly.

    ValueError saying why otherwise: never rounds (1.005 does not fit scale 2; 1.500 does).
    """
    # scaleb in a context of `precision` digits is exact or traps, in time linear in the digits;
    # checking adjusted() first keeps int() from building a huge number out of 1E+999999.
    scaled: decimal.Decimal | None
    try:
        scaled = value.scaleb(scale, _context(precision))
    except ArithmeticError:  # a digit would be lost (Inexact), or an exponent out of range
        scaled = None
    if scaled is not None and scaled.is_finite() and (not scaled or scaled.adjusted() < precision):
        unscaled = int(scaled)
        if unscaled == scaled:  # else digits after the point, beyond the scale
            return unscaled
    raise ValueError(decimal_problem(value, precision, scale))


def decimal_bytes(value: decimal.Decimal, precision: int, scale: int) -> bytes:
    """The Avro ``bytes`` of a decimal: the unscaled value in two's complement, big-endian, sized
    from its magnitude as fastavro and the C writer size it (-128 takes two bytes)."""
    unscaled = unscaled_decimal(value, precision, scale)
    return unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)


def decimal_problem(value: decimal.Decimal, precision: int, scale: int) -> str:
    """Why ``value`` does not fit decimal(precision, scale), for a record error."""
    if not value.is_finite():
        return "must be a finite number"
    integer_digits = precision - scale
    if value and value.adjusted() >= integer_digits:
        if integer_digits == 0:
            return f"must be less than 1 in magnitude (decimal({precision},{scale}))"
        return f"has more than {integer_digits} digit(s) before the decimal point"
    return f"has more than {scale} decimal place(s); values are never rounded"


@cache
def _context(precision: int) -> decimal.Context:
    # Inexact: a digit would be lost. Overflow and InvalidOperation: infinities, huge exponents.
    traps = [decimal.Inexact, decimal.InvalidOperation, decimal.Overflow]
    return decimal.Context(prec=precision, traps=traps)
