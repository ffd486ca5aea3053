"""The series names a PromQL expression reads (metrics or recorded rules),
for the tests that hold the rules and the dashboards to the exported metrics."""

from __future__ import annotations

import re

_FUNCTIONS_AND_KEYWORDS = frozenset(
    {
        # aggregations and their modifiers
        *("sum min max avg count stddev stdvar topk bottomk quantile count_values group").split(),
        *("by without on ignoring group_left group_right bool offset and or unless").split(),
        # functions used here (and the common ones)
        *(
            "rate irate increase delta idelta deriv histogram_quantile abs ceil floor round "
            "clamp clamp_min clamp_max vector scalar time timestamp absent absent_over_time "
            "avg_over_time max_over_time min_over_time sum_over_time count_over_time "
            "quantile_over_time last_over_time label_replace label_join sort sort_desc exp ln "
            "log2 log10 sqrt changes resets predict_linear"
        ).split(),
        "inf",
        "nan",
    }
)


def referenced_names(expr: str) -> set[str]:
    """Metric and rule names in `expr`: what is left after removing strings,
    label matchers, grouping clauses, ranges, durations, numbers and keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\boffset\s+\d+[smhdwy]", " ", text)
    text = re.sub(r"\$\w+", " ", text)  # Grafana variables ($__rate_interval, $job)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)", text):
        token = match.group(1)
        if token.lower() in _FUNCTIONS_AND_KEYWORDS:
            continue
        names.add(token)
    return names
