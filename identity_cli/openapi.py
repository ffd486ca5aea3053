"""`identity openapi`: write the gateway's OpenAPI 3.1 document.

The same document the gateway serves at /api/openapi.json, generated from
the contracts; for partner portals and client generators.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("openapi", help="write the REST API's OpenAPI 3.1 document")
    parser.add_argument("-o", "--output", help="file to write (default: standard output)")
    parser.add_argument(
        "--server-url", default="/", help="the servers[0].url of the document (default: /)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from gateway.openapi import build_document
    from gateway.routing import RouteTable, build_routes
    from identity_runtime import mesh

    document = build_document(
        RouteTable(build_routes(), mesh.BY_PACKAGE), server_url=args.server_url
    )
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(document['paths'])} paths)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
