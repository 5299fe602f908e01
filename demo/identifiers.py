"""Chinese identifiers with their check characters.

* Citizen identity numbers (公民身份号码), GB 11643-1999: 6-digit address code, 8-digit birth date,
  3-digit sequence code (odd for men, even for women) and an ISO 7064 MOD 11-2 check character.
* Unified social credit codes (统一社会信用代码), GB 32100-2015: registration authority, entity type,
  6-digit administrative division code, 9-character organization code (GB 11714, itself carrying a
  check character) and a MOD 31 check character.

Pure functions and the standard library only.
"""

from __future__ import annotations

import random
import re
from datetime import date

# --- GB 11643-1999: citizen identity number ---------------------------------------------------

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
_ID_PATTERN = re.compile(r"^\d{17}[\dX]$")


def id_check_digit(body17: str) -> str:
    """The check character ('0'-'9' or 'X') of the 17-digit body of an identity number."""
    if len(body17) != 17 or not body17.isdigit() or not body17.isascii():
        raise ValueError(f"an identity number body is 17 digits, not {body17!r}")
    total = sum(int(c) * w for c, w in zip(body17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def is_valid_id_number(s: str) -> bool:
    """True for an 18-character identity number with a real birth date and the right check character."""
    if not isinstance(s, str) or not _ID_PATTERN.match(s):
        return False
    try:
        birth = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    if birth.year < 1800:
        return False
    return id_check_digit(s[:17]) == s[17]


def make_id_number(county_code: str, birth_date: date, sequence: int, male: bool) -> str:
    """An identity number for someone registered in ``county_code`` and born on ``birth_date``.

    ``sequence`` (0-499) is the person's rank among those of the same sex registered with the same
    address code and birth date; the 3-digit sequence code is ``2 * sequence + 1`` for a man (odd
    last digit) and ``2 * sequence`` for a woman (even last digit).
    """
    if len(county_code) != 6 or not county_code.isdigit():
        raise ValueError(f"a county code is 6 digits, not {county_code!r}")
    if not 0 <= sequence <= 499:
        raise ValueError(f"sequence must be between 0 and 499, not {sequence}")
    code = 2 * sequence + (1 if male else 0)
    body = f"{county_code}{birth_date:%Y%m%d}{code:03d}"
    return body + id_check_digit(body)


def id_is_male(id_number: str) -> bool:
    """The sex an identity number records: odd 17th digit for men."""
    return int(id_number[16]) % 2 == 1


def id_birth_date(id_number: str) -> date:
    """The birth date an identity number records."""
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


# --- GB 11714-1997: organization code -------------------------------------------------------

ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def _org_value(c: str) -> int:
    if "0" <= c <= "9":
        return ord(c) - 48
    if "A" <= c <= "Z":
        return ord(c) - 55
    raise ValueError(f"not an organization code character: {c!r}")


def org_code_check_char(body8: str) -> str:
    """The check character of an 8-character organization code body (digits and capital letters)."""
    if len(body8) != 8:
        raise ValueError(f"an organization code body is 8 characters, not {body8!r}")
    c9 = 11 - sum(_org_value(c) * w for c, w in zip(body8, ORG_WEIGHTS, strict=True)) % 11
    return "X" if c9 == 10 else "0" if c9 == 11 else str(c9)


def is_valid_org_code(s: str) -> bool:
    """True for a 9-character organization code (without the hyphen) with the right check character."""
    if not isinstance(s, str) or not re.match(r"^[0-9A-Z]{8}[0-9X]$", s):
        return False
    return org_code_check_char(s[:8]) == s[8]


# --- GB 32100-2015: unified social credit code ----------------------------------------------

CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_VALUES = {c: i for i, c in enumerate(CREDIT_CHARSET)}
_CREDIT_PATTERN = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def credit_code_check_char(body17: str) -> str:
    """The check character of the first 17 characters of a unified social credit code."""
    if len(body17) != 17:
        raise ValueError(f"a credit code body is 17 characters, not {body17!r}")
    try:
        total = sum(_CREDIT_VALUES[c] * w for c, w in zip(body17, CREDIT_WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"not a credit code character: {exc.args[0]!r}") from None
    return CREDIT_CHARSET[(31 - total % 31) % 31]


def is_valid_credit_code(s: str) -> bool:
    """True for an 18-character credit code whose embedded organization code and check character are right."""
    if not isinstance(s, str) or not _CREDIT_PATTERN.match(s):
        return False
    return is_valid_org_code(s[8:17]) and credit_code_check_char(s[:17]) == s[17]


# Organization code bodies must also be credit code characters, so letters I, O, S, V, Z are left out.
_ORG_BODY_CHARS = CREDIT_CHARSET


def make_credit_code(county_code: str, rng: random.Random) -> str:
    """A credit code for an enterprise (registration authority 9 工商, type 1 企业) registered in ``county_code``.

    The organization code body is either eight digits, like codes issued before 2015, or ``MA``
    and six credit code characters, like codes issued since; its GB 11714 check character may be
    'X', which is also a credit code character.
    """
    if len(county_code) != 6 or not county_code.isdigit():
        raise ValueError(f"a county code is 6 digits, not {county_code!r}")
    if rng.random() < 0.5:
        body8 = "".join(rng.choice("0123456789") for _ in range(8))
    else:
        body8 = "MA" + "".join(rng.choice(_ORG_BODY_CHARS) for _ in range(6))
    org = body8 + org_code_check_char(body8)
    body17 = "91" + county_code + org
    return body17 + credit_code_check_char(body17)
