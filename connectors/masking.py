"""Masks applied to a value before it leaves the connector layer (Art 28), e.g. 371311********1234."""

from __future__ import annotations

from typing import Callable


def _keep(head: int, tail: int) -> Callable[[str], str]:
    def mask(value: str) -> str:
        if len(value) <= head + tail:
            return "*" * len(value)
        return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail:]

    return mask


MASKS: dict[str, Callable[[str], str]] = {
    "id_number": _keep(6, 4),  # 371311********1234
    "credit_code": _keep(8, 2),
    "phone": _keep(3, 4),  # 138****1234
    "name": _keep(1, 0),  # 张**
    "full": _keep(0, 0),
}
MASK_KINDS = frozenset(MASKS)


def apply_mask(kind: str, value: object) -> object:
    if value is None:
        return None
    return MASKS[kind](str(value))
