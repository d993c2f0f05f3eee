"""Class codes: six symbols a teacher reads out and students type, without look-alikes."""
from __future__ import annotations

import re
import secrets

from lenet.errors import DataError

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: they are misread on a projector
LENGTH = 6                                      # 32**6 ~ 1e9 codes: unguessable for a lesson's length


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def clean_code(text) -> str:
    """The code a student typed (any case, spaces or dashes), or DataError saying what a code looks like."""
    code = re.sub(r"[\s-]", "", str(text or "")).upper()
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        raise DataError(f"a class code is {LENGTH} letters and digits as the teacher shows it, e.g. K7M2QX "
                        f"(no 0, O, 1 or I)")
    return code
