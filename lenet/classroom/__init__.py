"""The classroom: a teacher, students and a class collection (no Streamlit).

codes.py: short class codes of an unambiguous alphabet; auth.py: the teacher password, checked
in constant time behind a rate limiter that logs every wrong try; store.py: a class's pooled
drawings on disk, each tagged by an opaque session tag; quota.py: how many trainings a student
may have queued or running at once.
"""
from .auth import Gate, SignIn
from .codes import ALPHABET, LENGTH, clean_code, new_code
from .quota import QuotaError, check_quota
from .store import ClassRoom, Classes

__all__ = ["ALPHABET", "LENGTH", "ClassRoom", "Classes", "Gate", "QuotaError", "SignIn", "check_quota",
           "clean_code", "new_code"]
