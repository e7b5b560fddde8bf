"""A household register given as a table, joined to the buildings.

The population a grid office has (the 两实 register, the household register) is
a spreadsheet keyed by address (门牌) or by building number, not a map.  A table
(CSV, Excel, or a DataFrame) is joined to the buildings:

- by key: a column of the table holding the building ids (``population_key``),
  compared as text after trimming (``12``, ``12.0`` and ``" 12 "`` are one id);
- by address: a column of the table (``population_address``) against the
  buildings' address column (``address_column``), both normalised
  (:func:`normalise_address`); a register address that goes on past a
  building's (a unit, a room: ``…12号3栋101室``) takes the building with the
  longest address it starts with, where the next character is not a digit (so
  that ``1号`` never takes ``12号``'s rows).

Each row is a household, or holds ``count_column`` households; the numeric
columns of the table named like the plan's counts (``pop_actual``,
``pop_registered``, ``pop_floating``, ``pop_absent``, ...) are summed per
building too.  The result is the buildings with those counts on them, which the
plan then uses as if they had been given there.  Every row that matches no
building is kept, with its reason, for ``population_unmatched.csv``; the totals
matched and unmatched are reported.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ._errors import LayerValidationError

__all__ = ["BUILDING_ADDRESS_COLUMNS", "RegisterJoin", "building_addresses", "is_table",
           "join_register", "normalise_address", "read_table"]

#: columns taken as a building's address, the first found (else OSM's street and
#: house number together)
BUILDING_ADDRESS_COLUMNS = ("address", "addr_full", "addr:full", "地址", "门牌")

#: the suffixes of files read as tables
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".xls")

# building designators written several ways: 3幢, 3座, 3号楼, 3楼 (a building, not
# a floor, where it ends the address or is followed by a unit) are all 3栋
_BUILDING = re.compile(r"(\d+)(?:号楼|幢|座|栋|楼(?=$|\d+单元|\d+室|\d{3,4}$))")
# a leading province, city and district: 上海市黄浦区…, 广东省深圳市南山区…
_PREFIX = re.compile(r"^(?:[^\d省]{2,7}省)?(?:[^\d市]{2,7}市)?(?:[^\d区县]{2,6}[区县])?")


def normalise_address(text: Any) -> str:
    """An address as it is compared: one spelling for the ways it is written.

    Full-width digits and letters become half-width (NFKC), spaces and
    punctuation go, letters are upper case, a leading province / city /
    district prefix is dropped, and 幢 / 座 / 号楼 (and 楼 ending a building's
    part) become 栋.

    Examples
    --------
    >>> normalise_address("上海市黄浦区 中山东一路１２号 ３幢")
    '中山东一路12号3栋'
    >>> normalise_address("中山东一路12号3号楼101室")
    '中山东一路12号3栋101室'
    >>> normalise_address("世纪大道8 1201室")
    '世纪大道8-1201室'
    >>> normalise_address(None)
    ''
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    s = unicodedata.normalize("NFKC", str(text)).upper()
    # two numbers apart stay apart (世纪大道8 1201室 is not 世纪大道81201室)
    s = re.sub(r"(?<=\d)[\s,，.。·・、]+(?=\d)", "-", s)
    s = re.sub(r"[\s,，.。·・、()（）\[\]【】#\"'“”]+", "", s)
    s = s.replace("—", "-").replace("－", "-")
    s = _PREFIX.sub("", s, count=1) or s
    return _BUILDING.sub(r"\1栋", s)


def is_table(source: Any) -> bool:
    """Whether a population source is a table (no geometry), not a map layer."""
    if isinstance(source, (gpd.GeoDataFrame, gpd.GeoSeries)):
        return False
    if isinstance(source, pd.DataFrame):
        return True
    if isinstance(source, (str, os.PathLike)):
        return Path(os.fspath(source).split("#")[0]).suffix.lower() in TABLE_SUFFIXES
    return False


def read_table(source: Any, *, encoding: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The register as a DataFrame, every column as text; and notes (an encoding guessed).

    A CSV in UTF-8 (with or without a byte-order mark), else GBK / GB18030 (with
    a note), or in ``encoding``; an Excel workbook's first sheet (or
    ``PATH#SHEET``).
    """
    if isinstance(source, pd.DataFrame):
        return source.copy(), []
    path_text = os.fspath(source)
    path_s, _, sheet = path_text.partition("#")
    path = Path(path_s)
    if not path.exists():
        msg = (f"`population` file not found: {path_s!r}. Check the path (current "
               f"directory: {os.getcwd()}).")
        raise LayerValidationError(msg)
    notes: list[str] = []
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        try:
            table = pd.read_excel(path, sheet_name=sheet or 0, dtype=str)
        except ImportError as exc:
            msg = (f"reading {path.name} needs openpyxl: pip install \"gridmap[xlsx]\" (or "
                   "save the sheet as CSV).")
            raise LayerValidationError(msg) from exc
        return table, notes
    raw = path.read_bytes()
    if encoding is None:
        if raw.startswith(b"\xef\xbb\xbf"):
            encoding = "utf-8-sig"
        else:
            try:
                raw.decode("utf-8")
                encoding = "utf-8"
            except UnicodeDecodeError:
                encoding = "gb18030"
                notes.append(f"`population` file {path.name!r} is not UTF-8; it was read as "
                             "GB18030 (GBK's superset, what Chinese spreadsheets save). Give "
                             "the encoding with encoding= (--encoding) if the text looks "
                             "wrong.")
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        table = pd.read_csv(path, dtype=str, encoding=encoding, sep=sep,
                            keep_default_na=False, na_values=[""])
    except UnicodeDecodeError as exc:
        msg = (f"`population` file {path.name!r} is not in {encoding} ({exc.reason} at byte "
               f"{exc.start}); give its encoding with encoding= (--encoding), e.g. gbk.")
        raise LayerValidationError(msg) from exc
    return table, notes


@dataclass(frozen=True)
class RegisterJoin:
    """A register joined to the buildings.

    ``counts``: one row per building (in the buildings' order), a column per
    count summed; ``unmatched``: the rows that match no building, with ``row``
    (the line of the file, the header being line 1) and ``reason``; ``report``:
    the totals, for ``metrics["register"]``.
    """

    counts: pd.DataFrame
    unmatched: pd.DataFrame
    report: dict[str, Any]


def join_register(table: pd.DataFrame, buildings: pd.DataFrame, *, ids: np.ndarray,
                  key: str | None, address: str | None, address_column: str | None,
                  count_column: str | None, fields: tuple[str, ...],
                  columns: Mapping[str, str] | None = None) -> RegisterJoin:
    """Join the register ``table`` to ``buildings`` (ids ``ids``) by key or address.

    ``fields`` are the counts a table column may carry (summed per building);
    ``columns`` maps canonical names to the table's, as for the layers.

    Examples
    --------
    >>> b = pd.DataFrame({"addr": ["中山东一路1号", "中山东一路12号"]})
    >>> t = pd.DataFrame({"门牌": ["上海市黄浦区中山东一路１２号3栋101室", "中山东一路1号",
    ...                           "中山东一路12号", "南京东路9号"]})
    >>> j = join_register(t, b, ids=np.array(["a", "b"]), key=None, address="门牌",
    ...                   address_column="addr", count_column=None, fields=())
    >>> j.counts["households"].tolist(), j.unmatched["reason"].tolist()
    ([1.0, 2.0], ['no building at this address'])
    """
    from .changes import id_key

    table = table.reset_index(drop=True)
    if columns:
        table = table.rename(columns={src: canon for canon, src in columns.items()
                                      if src in table.columns and src != canon})
    n_rows = len(table)
    if key is None and address is None:
        msg = ("a population table (a register: CSV, Excel or a DataFrame without "
               "geometry) needs a way to join it to the buildings: the table's column of "
               "building ids (population_key, --population-key) or of addresses "
               "(population_address, --population-address, with the buildings' address "
               f"column in address_column, --address-column); its columns are "
               f"{list(table.columns)}.")
        raise LayerValidationError(msg)
    for what, col, frame in (("population_key", key, table),
                             ("population_address", address, table),
                             ("count_column", count_column, table)):
        if col is not None and col not in frame.columns:
            msg = (f"the population table has no column {col!r} ({what}, "
                   f"--{what.replace('_', '-')}); its columns are {list(frame.columns)}.")
            raise LayerValidationError(msg)
    where = np.full(n_rows, -1, dtype=np.int64)
    reason = np.full(n_rows, "", dtype=object)
    if key is not None:
        lookup = {k: i for i, k in enumerate(id_key(pd.Series(ids)).tolist())}
        keys = id_key(table[key]).tolist()
        for r, k in enumerate(keys):
            if not k:
                reason[r] = "no building id"
            elif k in lookup:
                where[r] = lookup[k]
            else:
                reason[r] = "no building with this id"
        how = f"by key ({key!r} = the buildings' ids)"
    else:
        held = building_addresses(buildings, address_column)
        if not any(held):
            msg = ("joining the population table by address needs the buildings' "
                   "addresses (address_column, --address-column; default: a column "
                   f"{' / '.join(BUILDING_ADDRESS_COLUMNS)}, else OSM's addr_street and "
                   "addr_housenumber), but they have none; their columns are "
                   f"{[c for c in buildings.columns if c != 'geometry']}.")
            raise LayerValidationError(msg)
        where, reason = _by_address(table[address], pd.Series(held))
        how = (f"by address ({address!r} against the buildings' "
               f"{address_column or 'address'})")
    if count_column is not None:
        hh = pd.to_numeric(table[count_column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(hh) & (where >= 0)
        reason[bad] = f"{count_column} is not a number"
        where[bad] = -1
    else:
        hh = np.ones(n_rows)
    n_b = len(buildings)
    matched = where >= 0
    counts = pd.DataFrame({"households": np.bincount(where[matched], weights=hh[matched],
                                                     minlength=n_b)})
    summed = [f for f in fields if f in table.columns and f != "households"]
    for f in summed:
        v = pd.to_numeric(table[f], errors="coerce").fillna(0).to_numpy(dtype=float)
        counts[f] = np.bincount(where[matched], weights=v[matched], minlength=n_b)
    unmatched = table[~matched].copy()
    unmatched.insert(0, "row", np.flatnonzero(~matched) + 2)
    unmatched["reason"] = reason[~matched]
    report = {
        "rows": n_rows, "matched_rows": int(matched.sum()),
        "unmatched_rows": int((~matched).sum()), "joined": how,
        "households": float(np.nansum(hh)),
        "households_matched": float(hh[matched].sum()),
        "households_unmatched": float(np.nansum(hh[~matched])),
        "buildings_with_rows": int((counts["households"] > 0).sum()),
        "fields_summed": ["households", *summed],
    }
    return RegisterJoin(counts, unmatched.reset_index(drop=True), report)


def building_addresses(b: pd.DataFrame, column: str | None = None) -> np.ndarray:
    """Every building's address as text ('' where it has none).

    ``column``, else the first of :data:`BUILDING_ADDRESS_COLUMNS` the buildings have,
    else OpenStreetMap's ``addr_street`` and ``addr_housenumber`` together.

    Examples
    --------
    >>> building_addresses(pd.DataFrame({"addr_street": ["中山东一路", None],
    ...                                  "addr_housenumber": ["12号", "3"]})).tolist()
    ['中山东一路12号', '3']
    """
    if column is not None:
        if column not in b.columns:
            msg = (f"the buildings have no column {column!r} of addresses (address_column, "
                   f"--address-column); their columns are "
                   f"{[c for c in b.columns if c != 'geometry']}.")
            raise LayerValidationError(msg)
        return b[column].fillna("").astype(str).to_numpy()
    for c in BUILDING_ADDRESS_COLUMNS:
        if c in b.columns:
            return b[c].fillna("").astype(str).to_numpy()
    street = next((c for c in ("addr_street", "addr:street") if c in b.columns), None)
    number = next((c for c in ("addr_housenumber", "addr:housenumber") if c in b.columns),
                  None)
    if street is None and number is None:
        return np.full(len(b), "", dtype=object)
    parts = [b[c].fillna("").astype(str) for c in (street, number) if c is not None]
    joined = parts[0] if len(parts) == 1 else parts[0] + parts[1]
    return joined.str.strip().to_numpy()


def _by_address(rows: pd.Series, addresses: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The building of every row (-1: none) and why none, by normalised address."""
    norm_b = [normalise_address(a) for a in addresses.tolist()]
    index: dict[str, int] = {}
    for i, a in enumerate(norm_b):
        # several buildings at one address (a footprint in parts): the first takes it
        if a and a not in index:
            index[a] = i
    longest = max((len(a) for a in index), default=0)
    where = np.full(len(rows), -1, dtype=np.int64)
    reason = np.full(len(rows), "", dtype=object)
    for r, text in enumerate(rows.tolist()):
        a = normalise_address(text)
        if not a:
            reason[r] = "no address"
            continue
        hit = index.get(a, -1)
        n = min(len(a) - 1, longest)
        while hit < 0 and n > 0:
            # the longest building address this one starts with, not cut in a number
            if a[:n] in index and not (a[n - 1].isdigit() and a[n].isdigit()):
                hit = index[a[:n]]
            n -= 1
        if hit < 0:
            reason[r] = "no building at this address"
        where[r] = hit
    return where, reason
