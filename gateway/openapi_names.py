"""Short schema names for the OpenAPI document.

Schemas are collected under the proto full names
(`identity.kyc_tier.v1.CreateCustomerRequest`); generators turn those into
class names like `IdentityKycTierV1CreateCustomerRequest`. The published
document names each schema by its message name (`CreateCustomerRequest`,
`Customer`; a nested message joins its parents: `OuterInner`). Where two
packages share a message name, both get their package as a prefix
(`LivenessIssueChallengeRequest`), so a name never depends on which was seen
first.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

_REF = "#/components/schemas/"


def _pascal(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", "_").split("_"))


def _short(full_name: str) -> tuple[str, str]:
    """(short name, package-qualified name) of a proto full name."""
    parts = full_name.split(".")
    version = next((i for i, p in enumerate(parts) if p.startswith("v") and p[1:].isdigit()), -1)
    if version < 0:
        return full_name, full_name
    nested = "".join(parts[version + 1 :])
    package = "".join(_pascal(p) for p in parts[1:version])
    return nested, package + nested


def short_names(full_names: list[str], taken: frozenset[str] = frozenset()) -> dict[str, str]:
    """Proto full name -> schema name; `taken` are names already in use (`Error`)."""
    shorts = {name: _short(name) for name in full_names}
    counts = Counter(short for short, _ in shorts.values())
    names = {}
    for name, (short, qualified) in shorts.items():
        chosen = short if counts[short] == 1 and short not in taken else qualified
        names[name] = chosen
    if len(set(names.values())) != len(names):
        raise ValueError("two schemas would share a short name")
    return names


def _rewrite(node: Any, renamed: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF):
                target = value[len(_REF) :]
                out[key] = _REF + renamed.get(target, target)
            else:
                out[key] = _rewrite(value, renamed)
        return out
    if isinstance(node, list):
        return [_rewrite(item, renamed) for item in node]
    return node


def shorten(document: dict[str, Any]) -> dict[str, Any]:
    """The document with its schemas under short names (refs rewritten);
    each renamed schema keeps its proto name in `x-proto-name`."""
    schemas: dict[str, Any] = document["components"]["schemas"]
    protos = [name for name in schemas if "." in name]
    renamed = short_names(protos, frozenset(name for name in schemas if "." not in name))
    document = _rewrite(document, renamed)
    new_schemas = {}
    for name, schema in document["components"]["schemas"].items():
        if name in renamed:
            new_schemas[renamed[name]] = {**schema, "x-proto-name": name}
        else:
            new_schemas[name] = schema
    document["components"]["schemas"] = dict(sorted(new_schemas.items()))
    return document
