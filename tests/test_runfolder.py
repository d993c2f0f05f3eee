"""The one run folder (lenet.grid.runfolder) under the grid, its readouts and every study."""
from __future__ import annotations

import json
import math

import pytest

from lenet.grid.runfolder import META, REPRODUCTION, RUNS, RunFolder, RunsFileError, Table, csv_text, read_rows

TABLE = Table(key=("n", "k"), result=("acc", "note", "capped"), types=dict(n=int, k=int, acc=float, note=str, capped=bool),
              missing=("acc",))


def test_rows_round_trip_exactly_and_bad_rows_name_their_line(tmp_path):
    rows = [{"n": 1, "k": 5, "acc": 0.1 + 0.2, "note": "x", "capped": True},
            {"n": 2, "k": 5, "acc": math.nan, "note": "", "capped": False}]
    path = tmp_path / RUNS
    path.write_text(csv_text(TABLE.fields, rows))
    back = read_rows(path, TABLE, {(1, 5), (2, 5)})
    assert back[0] == rows[0] and math.isnan(back[1]["acc"]), "floats read back exactly (repr)"
    for text, msg in (("n,k\n", "the header is not"), ("n,k,acc,note,capped\n1,5,0.5,x\n", "line 2: expected 5"),
                      ("n,k,acc,note,capped\n1,5,zero,x,True\n", "line 2: could not convert"),
                      ("n,k,acc,note,capped\n1,5,inf,x,True\n", "line 2: every number must be finite"),
                      ("n,k,acc,note,capped\n1,5,0.5,x,yes\n", "line 2: 'yes' is not True or False"),
                      ("n,k,acc,note,capped\n3,5,0.5,x,True\n", "line 2: n=3, k=5 is not a run"),
                      ("n,k,acc,note,capped\n1,5,0.5,x,True\n1,5,0.5,x,True\n", "line 3: n=1, k=5 appears twice")):
        path.write_text(text)
        with pytest.raises(RunsFileError, match=msg):
            read_rows(path, TABLE, {(1, 5), (2, 5)})
    path.write_text(csv_text(TABLE.fields, rows[:1]))
    with pytest.raises(RunsFileError, match="line 2: too good"):
        read_rows(path, TABLE, check=lambda r: "too good" if r["acc"] > 0.2 else None)


def test_a_folder_is_locked_and_refuses_another_kind_or_other_settings(tmp_path):
    with RunFolder(tmp_path, "partial", {"a": (1, 2)}) as folder:
        folder.write(META, json.dumps({"study": "partial", "settings": folder.settings}))
        with pytest.raises(RunsFileError, match="in use by another study"):
            RunFolder(tmp_path, "partial", {"a": (1, 2)})
    with RunFolder(tmp_path, "partial", {"a": [1, 2]}) as again:  # tuples and lists are the same settings
        assert again.old["settings"] == {"a": [1, 2]}
    with pytest.raises(RunsFileError, match="holds a partial study with other settings \\(a differ\\)"):
        RunFolder(tmp_path, "partial", {"a": [1, 3]})
    with pytest.raises(RunsFileError, match="holds the study 'partial', not a reproduction"):
        RunFolder(tmp_path, REPRODUCTION, {"a": [1, 2]})
    (tmp_path / META).unlink()
    with pytest.raises(RunsFileError, match="exists without meta.json"):
        (tmp_path / RUNS).write_text("n,k\n")
        RunFolder(tmp_path, "partial", {})
    assert RunFolder(None, "partial", {}).read(TABLE) == [], "no folder: nothing on disk, nothing read"
