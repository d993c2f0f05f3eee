"""Confusable glyphs ("twins"): characters that EMNIST writers draw as the same shape.

A new character that is the twin of a source character is not new to the source net: its
features were learned on the same glyph under another label, so transfer to it measures
recognition of a known shape, not knowledge transfer. The default class splits
(lenet.data.protocol.default_class_split) therefore pick no new character that is a twin
of a source character; `twins="allow"` keeps the old pick so the effect can be measured.

Entries and why:
  * case twins: the 15 letters whose capital and small forms EMNIST's own authors merge in
    its ByMerge and Balanced splits because they are "not distinguishable" by shape
    (Cohen et al. 2017, sec. II-C): C I J K L M O P S U V W X Y Z;
  * digit/letter look-alikes: 0 O o, 1 I i l, 2 Z z, 5 S s, 9 g q.
Measured (lenet.core.net.confusions: share of an unseen character's first 300 EMNIST images that
the shipped source net assets/source-emnist reads as its twin; chance 5%, other pairs: median
0.7%, 95th percentile 23%): 0->O 97%, o->O 95%, u->U 90%, Z->2 80%, y->Y 78%, i->I 68%,
l->1 65%, z->2 65%, 9->q 61%, 9->g 35%, l->I 28%, i->1 21%; l->L only 4% (kept: EMNIST merges
it). The net also reads some non-twins mostly as one of its characters (W->N 84%, b->h 83%,
T->t 75%): with 20 characters to choose from it names the nearest, so a high rate alone does
not make a twin; the table keeps to shapes that are the same glyph.
"""
from __future__ import annotations

CASE_TWINS = tuple(c + c.lower() for c in "CIJKLMOPSUVWXYZ")
LOOK_ALIKES = ("0Oo", "1Iil", "2Zz", "5Ss", "9gq")
TWIN_GROUPS = CASE_TWINS + LOOK_ALIKES


def twins_of(c: str) -> set[str]:
    """The characters drawn like c (c excluded)."""
    return {t for g in TWIN_GROUPS if c in tuple(g) for t in g} - {c}  # whole characters, not substrings


def twin_pairs(source, target) -> list[tuple[str, str]]:
    """(source character, new character) pairs that are twins."""
    return [(s, t) for t in target for s in source if t in twins_of(s)]
