"""Omniglot's alphabets as new characters for the Teach page: real drawings of characters no source net here
was trained on, added to the session's drawn samples beside (or instead of) one's own."""
from __future__ import annotations

import streamlit as st

from lenet.data import CharacterSet, DataError
from lenet.data.omniglot import alphabet_of, alphabets
from lenet.data.protocol import rows_of
from lenet.drawing.store import MAX_NAME, SampleStore

from .drawing import check_data
from .session import dataset


def teach_name(cls: str) -> str:
    """A short name for Teach's list: "Korean/character05" -> "Korean05" (MAX_NAME symbols at most)."""
    number = cls.rsplit("character", 1)[-1]
    return alphabet_of(cls).replace("_", "")[:MAX_NAME - len(number)] + number


def add_drawings(store: SampleStore, ds: CharacterSet, chars: list[str], per_char: int) -> dict[str, int]:
    """The first per_char drawers' drawings of each character into the store, under teach_name;
    {name: drawings added}. A name already on the list is refused, so no character gets two sources."""
    if not chars:
        raise DataError("choose at least one character")
    taken = [teach_name(c) for c in chars if teach_name(c) in store.characters()]
    if taken:
        raise DataError(f"{', '.join(taken)} already on the list; delete its samples first to add it again")
    added = {}
    for c in chars:
        rows = rows_of(ds, c)[:per_char]
        for r in rows:
            store.add(teach_name(c), ds.images[r])
        added[teach_name(c)] = len(rows)
    return added


def teach_panel(store: SampleStore, on_added) -> None:
    """Behind a toggle (Omniglot is loaded only once it is on): an Omniglot alphabet, some of its characters
    and how many drawers' drawings of each, added to the samples; on_added(message) says what was added,
    then the page runs again to list them."""
    if not st.toggle("Or take characters from an Omniglot alphabet", key="teach-og",
                     help="Real drawings of characters the source net never saw (docs/omniglot.md)."):
        return
    with st.container(border=True):
        ds = check_data(dataset, "omniglot")
        if ds is None:
            return
        groups = alphabets(ds)
        alphabet = st.selectbox("Alphabet", list(groups), key="teach-og-alphabet",
                                help="Omniglot's background alphabets: 20 people drew each character once.")
        chars = st.multiselect("Characters", groups[alphabet], default=groups[alphabet][:5],
                               key=f"teach-og-chars-{alphabet}", format_func=teach_name,
                               help="Each joins the list under a short name (alphabet and number).")
        per = st.number_input("Drawings of each (different people)", 1, 20, 5, key="teach-og-per",
                              help="With 3 or more of each, the last is kept out of training to test on.")
        if st.button("Add their drawings", key="teach-og-add"):
            added = check_data(add_drawings, store, ds, chars, int(per))
            if added:
                on_added("Added Omniglot drawings: " + ", ".join(f"{n} of {c}" for c, n in added.items()) + ".")
                st.rerun()
