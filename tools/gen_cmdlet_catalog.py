#!/usr/bin/env python3
"""Generate ``core/data/cmdlets.json`` (package data ``lync2fa/data/cmdlets.json``) from the shared
reference catalog of documented PowerShell signatures.

Source: ``../shared/reference/cmdlets.json`` (seen from the project root), built from Microsoft's
platyPS docs (MicrosoftDocs/PowerShell-Docs reference/5.1, MicrosoftDocs/windows-powershell-docs,
MicrosoftDocs/office-docs-powershell) and the windows-commands pages of tpmvscmgr, certutil and certreq;
its own ``generated_from`` names the commits. The product never reads ../shared: it reads only the file
this tool writes.

What is kept, per cmdlet: module, doc path, default and documented parameter sets, every parameter's
type, aliases, position, required_in, sets, accepted_values, values_from_description and provider,
ps7_only_parameters, the 5.1/7 accepted-value differences, supports_should_process,
common_parameters, and what an older Windows Server lacks (``absent_in``, below). Prose (notes, descriptions, doc histories) is dropped. The ``native`` section is
reduced to the shapes an argument check needs (verbs, options and whether they take a value, the
documented value lists). Output is deterministic (sorted keys, fixed separators).

Run:        .venv/bin/python tools/gen_cmdlet_catalog.py [SOURCE]
Check only: .venv/bin/python tools/gen_cmdlet_catalog.py --check [SOURCE]   (exit 1 on drift)
tests/test_catalog.py fails while the committed file differs from what this writes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "reference" / "cmdlets.json"
OUTPUT = ROOT / "core" / "data" / "cmdlets.json"
GENERATED_BY = "tools/gen_cmdlet_catalog.py"

CMDLET_FIELDS = (
    "module",
    "doc",
    "default_parameter_set",
    "parameter_sets",
    "supports_should_process",
    "common_parameters",
    "ps7_only_accepted_values",
    "windows_powershell_5_1_only_accepted_values",
    "windows_powershell_5_1_only_parameters",
)
PARAMETER_FIELDS = (
    "type",
    "aliases",
    "position",
    "position_by_set",
    "required_in",
    "sets",
    "accepted_values",
    "values_from_description",
    "provider",
)


# The source compares each Windows Server cmdlet with the archived winserver2012r2-ps docs
# (``docsets_compared``); 2016, 2019, 2022 and 2025 document the same parameter names. Kept per cmdlet as
# ``absent_in``: {platform: [parameters its docs lack]}, or {platform: "cmdlet"} when the cmdlet itself
# is not documented there.
OLDER_DOCSETS = {"winserver2012r2-ps (archived)": "Windows Server 2012 R2"}


def _absent_in(source: dict) -> dict[str, Any]:
    absent: dict[str, Any] = {}
    for docset, platform in OLDER_DOCSETS.items():
        compared = (source.get("docsets_compared") or {}).get(docset)
        if isinstance(compared, str) and compared.startswith("no such cmdlet"):
            absent[platform] = "cmdlet"
        elif isinstance(compared, dict) and compared.get("absent_from_this_docset"):
            absent[platform] = sorted(compared["absent_from_this_docset"])
    return absent


def _cmdlet(source: dict) -> dict:
    out = {k: source[k] for k in CMDLET_FIELDS if k in source}
    absent = _absent_in(source)
    if absent:
        out["absent_in"] = absent
    # ps7_only_parameters maps name -> "from 7.4 docs": the version is a fact, keep it.
    out["ps7_only_parameters"] = dict(source.get("ps7_only_parameters") or {})
    if "windows_powershell_5_1_only_parameters" in out:
        out["windows_powershell_5_1_only_parameters"] = sorted(out["windows_powershell_5_1_only_parameters"])
    out["parameters"] = {
        name: {k: p[k] for k in PARAMETER_FIELDS if k in p} for name, p in source["parameters"].items()
    }
    return out


def _option_name(spec: str) -> tuple[str, bool]:
    """'-config Machine\\CAName' -> ('-config', True); '-f' -> ('-f', False)."""
    parts = spec.split(None, 1)
    return parts[0], len(parts) > 1


def _dash_options(table: dict) -> dict:
    """certutil/certreq option table (name + value placeholder -> prose) -> {name: shape}."""
    options: dict[str, dict[str, Any]] = {}
    for spec, text in table.items():
        name, takes_value = _option_name(spec)
        shape: dict[str, Any] = {"takes_value": takes_value}
        alias = re.match(r"\((-\w+)\)", text or "")
        if alias:
            shape["aliases"] = [alias.group(1)]
        options[name] = shape
    return options


def _certutil(source: dict) -> dict:
    verbs: dict[str, dict[str, Any]] = {}
    for verb, v in source["verbs"].items():
        names = sorted(
            {_option_name(o)[0] for o in v.get("options", []) + v.get("older_doc_options", [])}, key=str.lower
        )
        shape: dict[str, Any] = {"options": names}
        args = {k: a for k, a in (v.get("args") or {}).items() if isinstance(a, list)}
        if args:
            shape["args"] = args
        verbs[verb] = shape
    return {
        "docs": source["docs"],
        "style": "verb",
        "general_syntax": source["general_syntax"],
        "options": _dash_options(source["options"]),
        "verbs": verbs,
        "hash_algorithms": source.get("hash_algorithms", []),
    }


def _certreq(source: dict) -> dict:
    verbs: dict[str, dict] = {_option_name(v)[0]: {} for v in source["verbs"]}
    inf = source.get("inf", {})
    keys = {k: (v if isinstance(v, list) else None) for k, v in inf.get("NewRequest_keys", {}).items()}
    return {
        "docs": source["docs"],
        "style": "verb",
        "default_verb": "-submit",
        "syntax": source["syntax"],
        "options": _dash_options(source["options"]),
        "verbs": verbs,
        "inf": {"NewRequest_keys": keys},
    }


def _tpmvscmgr(source: dict) -> dict:
    verbs = {}
    for verb, v in source["subcommands"].items():
        options = {}
        for name, o in v["options"].items():
            shape: dict[str, Any] = {"takes_value": bool(o.get("takes_value"))}
            if o.get("required"):
                shape["required"] = True
            if isinstance(o.get("values"), list):
                shape["values"] = o["values"]
            if isinstance(o.get("sub_options"), dict):
                shape["sub_options"] = {k: (s if isinstance(s, list) else None) for k, s in o["sub_options"].items()}
            options[name] = shape
        verbs[verb] = {"options": options, "syntax": v.get("syntax")}
    return {"docs": source["docs"], "style": "subcommand", "verbs": verbs}


NATIVE = {"certutil.exe": _certutil, "certreq.exe": _certreq, "tpmvscmgr.exe": _tpmvscmgr}


def build(source: dict, source_path: str) -> dict:
    common = source["common_parameters"]
    return {
        "header": {
            "source": source_path,
            "generated_by": GENERATED_BY,
            "generated_from": source["generated_from"],
            "note": "Facts from Microsoft's public docs, via the reference catalog; not an official "
            "Microsoft artifact. Regenerate, do not edit.",
        },
        "common_parameters": {
            k: common[k]
            for k in (
                "windows_powershell_5_1",
                "risk_mitigation",
                "powershell_7_4_plus_only",
                "action_preference_values_5_1",
                "action_preference_values_7x_extra",
                "doc",
            )
            if k in common
        },
        "cmdlets": {name: _cmdlet(c) for name, c in source["cmdlets"].items()},
        "native": {name: NATIVE[name](n) for name, n in source["native"].items() if name in NATIVE},
        "not_found": sorted(x["name"] for x in source.get("not_found", [])),
    }


def render(source_file: Path) -> str:
    source = json.loads(source_file.read_text(encoding="utf-8"))
    # Name the source relative to the project so the output does not depend on where the checkout lives.
    shown = (
        "../shared/reference/cmdlets.json" if source_file.resolve() == DEFAULT_SOURCE.resolve() else source_file.name
    )
    return json.dumps(build(source, shown), indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed file differs")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render(args.source)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run tools/gen_cmdlet_catalog.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
