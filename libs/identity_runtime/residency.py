"""Residency by configuration (UU PDP No. 27/2022): every service declares its
region (`<PREFIX>_DATA_REGION`), the regions personal data may live in are an
explicit list (`<PREFIX>_ALLOWED_REGIONS`: id-jkt-1, plus the disaster-recovery
site when there is one, e.g. id-sby-1 or id-btm-1), and the production
profile refuses to start when a store holding personal data (database,
object store, KMS, Triton endpoint: the settings a service names in
`RESIDENT_ENDPOINTS`, and those naming a region directly, such as a bucket's
or a KMS key's region, in `RESIDENT_REGIONS`) is outside those regions or
its region is not declared.

An endpoint's region is known, in this order:
- a local file (SQLite) or loopback address: the service's own region;
- a cluster-internal name (`*.svc`, `*.svc.cluster.local`): the service's own
  region (the chart pins every pod to the allowed regions);
- a declaration `<PREFIX>_ENDPOINT_REGIONS=host=region,...`;
- a cloud region in the host name (ap-southeast-3 and asia-southeast2 are
  Jakarta). A host naming a cloud region that contradicts its declaration is
  refused: a declaration cannot move a store into Indonesia.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

# The platform's region names are Indonesian sites: id-<site>-<n>.
REGION = re.compile(r"^id-[a-z]{3}-[0-9]+$")
# Cloud regions that are the Jakarta site.
CLOUD_REGIONS = {"ap-southeast-3": "id-jkt-1", "asia-southeast2": "id-jkt-1"}
# Anything that looks like a cloud provider's region in a host name.
_CLOUD_REGION = re.compile(
    r"(?<![a-z])((?:ap|us|eu|sa|ca|me|af|il|mx)-[a-z]+-[0-9]|"
    r"(?:asia|europe|us|northamerica|southamerica|australia|me|africa)-[a-z]+[0-9])(?![0-9])"
)
_LOCAL = {"localhost", "127.0.0.1", "::1", ""}


def host_of(value: str) -> str | None:
    """The host an endpoint setting points at; None for a local file."""
    if value.startswith("sqlite"):
        return None
    if "://" not in value:
        value = f"//{value}"
    return (urlsplit(value).hostname or "").lower()


def parse_declarations(raw: str) -> dict[str, str]:
    """`host=region,host=region` (already split on commas by the settings)."""
    declared: dict[str, str] = {}
    for part in raw.split(","):
        if part.strip():
            host, _, region = part.partition("=")
            declared[host.strip().lower()] = region.strip()
    return declared


def problems(
    *,
    production: bool,
    data_region: str,
    allowed_regions: Iterable[str],
    endpoint_regions: str,
    endpoints: Mapping[str, str],
    regions: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """(setting, reason) for each breach; none outside production except a
    malformed declaration."""
    allowed = tuple(allowed_regions)
    found: list[tuple[str, str]] = []
    for region in allowed:
        if not REGION.match(region):
            found.append(("allowed_regions", f"{region!r} is not an Indonesian region (id-xxx-N)"))
    declared = parse_declarations(endpoint_regions)
    for host, region in declared.items():
        if not host or not region:
            found.append(("endpoint_regions", "write each declaration as host=region"))
    if not production:
        return found
    if not data_region:
        found.append(("data_region", "production must declare the region it runs in"))
    elif data_region not in allowed:
        found.append(
            ("data_region", f"{data_region} is not one of the allowed regions {', '.join(allowed)}")
        )
    for name, value in endpoints.items():
        if value:
            reason = _endpoint_problem(value, data_region, allowed, declared)
            if reason:
                found.append((name, reason))
    for name, region in (regions or {}).items():
        # A store named by its region (a bucket's, a KMS key's): the platform's
        # name or the cloud's (ap-southeast-3 is Jakarta); empty = the service's own.
        named = CLOUD_REGIONS.get(region, region)
        if region and named not in allowed:
            found.append((name, f"{region} is outside the allowed regions {', '.join(allowed)}"))
    return found


def _endpoint_problem(
    value: str, data_region: str, allowed: tuple[str, ...], declared: Mapping[str, str]
) -> str | None:
    host = host_of(value)
    if host is None or host in _LOCAL:
        return None
    in_name = [CLOUD_REGIONS.get(m, m) for m in _CLOUD_REGION.findall(host)]
    if host.endswith((".svc", ".svc.cluster.local")):
        region: str | None = data_region
    else:
        region = declared.get(host) or (in_name[0] if in_name else None)
    if region is None:
        # The host only, never the URL (it may hold a password).
        return f"the region of {host} is not declared (ENDPOINT_REGIONS host=region)"
    for named in in_name:
        if named != region:
            return f"{host} names the cloud region of {named}, not {region}"
    if region not in allowed:
        return f"{host} is in {region}, outside the allowed regions {', '.join(allowed)}"
    return None
