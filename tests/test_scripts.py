"""The resource-script contract, for every task of every installed plugin."""
from __future__ import annotations

import json

import pytest

from lync2fa import api
from lync2fa.script import INPUT_END, INPUT_START, input_document, parse_result, read_input, render

from powershell_syntax import syntax_errors

HOSTILE = "x'@\n\"@ $(Remove-Item -Recurse C:\\) `; & calc.exe #"
TASKS = api.tasks()


def sample_params(task, value_for_str):
    params = {}
    for p in task.params:
        if p.type == "str":
            params[p.name] = value_for_str if not p.choices else p.choices[0]
        elif p.type == "list":
            params[p.name] = [value_for_str] if (p.elements or "str") == "str" else (p.default or [])
        elif p.type == "dict":
            params[p.name] = {"key": value_for_str}
        elif p.type == "bool":
            params[p.name] = bool(p.default)
        else:
            params[p.name] = p.default if p.default is not None else 1
    return params


@pytest.mark.parametrize("name", sorted(TASKS))
@pytest.mark.parametrize("check_mode", [False, True])
def test_rendered_script_parses(name, check_mode):
    task = TASKS[name]
    script = render(task.template, name, sample_params(task, "sample"), check_mode)
    assert syntax_errors(script) == []
    assert script.count(INPUT_START) == 1


@pytest.mark.parametrize("name", sorted(TASKS))
def test_user_values_are_data_never_code(name):
    task = TASKS[name]
    params = sample_params(task, HOSTILE)
    script = render(task.template, name, params, False)
    takes_text = any(p.type in ("str", "list", "dict") and not p.choices for p in task.params)
    # The hostile value exists only as JSON inside the one-line here-string...
    assert ("Remove-Item -Recurse C:" in script) == takes_text
    outside = script.replace(input_document(params, False), "<DATA>")
    assert "Remove-Item -Recurse C:" not in outside and "calc.exe" not in outside
    # ...the script still parses, and the lab reads back exactly what was sent.
    assert syntax_errors(script) == []
    assert read_input(script) == (name, json.loads(input_document(params, False)))


def test_here_string_cannot_be_closed_by_a_value():
    doc = input_document({"v": "a\n'@\nRemove-Item x"}, False)
    assert "\n" not in doc and INPUT_END not in doc


def test_syntax_checker_catches_broken_scripts():
    assert syntax_errors("if ($a) { Write-Output 'x' ") != []
    assert syntax_errors("$h = @{ a = 1; b = ") != []
    assert syntax_errors("Get-Item -Path 'x' | ") != []
    assert syntax_errors("$x = 'unterminated") != []


def test_result_parsing_takes_the_json_line_and_requires_every_key():
    out = 'noise\r\n{"changed":true,"failed":false,"msg":"","before":{},"after":{"a":1},"warnings":"w"}\r\n'
    result = parse_result(out)
    assert result.changed and result.after == {"a": 1} and result.warnings == ["w"]
    with pytest.raises(ValueError, match="lacks"):
        parse_result('{"changed": true}')
    with pytest.raises(ValueError, match="no JSON"):
        parse_result("Exception: boom")
