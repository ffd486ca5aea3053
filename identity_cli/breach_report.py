"""The 72-hour breach notification report (UU PDP No. 27/2022, art. 46):
written notice to the data subjects and the supervising authority within
3 x 24 hours, stating at least the personal data exposed, when and how, and
the handling and recovery measures. The platform is the processor; each
organisation (the controller) completes and sends its notice. Counts only:
the affected customers go to a separate operator-only file."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

NOTIFY_WITHIN = timedelta(hours=72)
TO_COMPLETE = "(to complete)"
# What the platform holds, per count in the report.
DATA_CATEGORIES = {
    "customers": "customer records (name, e-mail, phone: partner-supplied)",
    "customers_with_nik": "NIKs (sealed with AES-256-GCM under per-customer keys)",
    "sealed_captures": "KTP and selfie capture frames (sealed at rest)",
    "templates": "face templates (biometric data, sealed; specific personal data, art. 4)",
}
MEASURES = [
    "Face templates revoked and their keys shredded: `identity breach revoke-templates`; "
    "customers flagged to enroll again.",
    "Keys rotated where exposure is suspected: `identity keys rotate`.",
    "Audit chain verified and exported for the investigation: `identity audit verify|export`.",
]


def report(
    incident: str,
    detected_at: datetime,
    prepared_at: datetime,
    counts: dict[str, dict[str, int]],
    totals: dict[str, int],
) -> dict[str, Any]:
    deadline = detected_at + NOTIFY_WITHIN
    return {
        "incident": incident,
        "detected_at": detected_at.isoformat(),
        "notify_by": deadline.isoformat(),
        "hours_left": round((deadline - prepared_at).total_seconds() / 3600, 1),
        "role": "processor (the organisations are the controllers and notify their customers)",
        "data_categories": {k: v for k, v in DATA_CATEGORIES.items() if totals.get(k)},
        "organisations": counts,
        "totals": totals,
        "how_and_when": TO_COMPLETE,
        "likely_consequences": TO_COMPLETE,
        "measures": MEASURES,
        "contact": TO_COMPLETE,
    }


def render_markdown(document: dict[str, Any]) -> str:
    lines = [
        f"# Personal data breach notification: {document['incident']}",
        "",
        f"- Detected: {document['detected_at']}",
        f"- Notify by (72 hours, UU PDP art. 46): {document['notify_by']} "
        f"({document['hours_left']} hours left)",
        f"- Our role: {document['role']}",
        "",
        "## Personal data concerned",
        "",
        *(f"- {text}" for text in document["data_categories"].values()),
        "",
        "## Affected, per organisation (counts)",
        "",
        "| Organisation | " + " | ".join(DATA_CATEGORIES) + " |",
        "|---|" + "---|" * len(DATA_CATEGORIES),
    ]
    for org, values in document["organisations"].items():
        lines.append(
            f"| {org} | " + " | ".join(str(values.get(k, 0)) for k in DATA_CATEGORIES) + " |"
        )
    totals = document["totals"]
    lines.append("| all | " + " | ".join(str(totals.get(k, 0)) for k in DATA_CATEGORIES) + " |")
    if "customers_file_rows" in document:
        lines += [
            "",
            f"Affected customers listed: {document['customers_file_rows']} (operator file).",
        ]
    lines += [
        "",
        f"## When and how the data was disclosed\n\n{document['how_and_when']}",
        "",
        f"## Likely consequences\n\n{document['likely_consequences']}",
        "",
        "## Handling and recovery measures",
        "",
        *(f"- {m}" for m in document["measures"]),
        "",
        f"## Contact\n\n{document['contact']}",
    ]
    return "\n".join(lines)
