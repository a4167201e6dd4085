"""The --format template subset: what it renders and what it refuses."""

from __future__ import annotations

import json

import pytest

from buildkit_py.errors import UsageError
from buildkit_py.imagetools.template import Fields, Lazy, TemplateError, parse

DATA = Fields(
    Name="reg:5000/app:1",
    Manifest={"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
              "digest": "sha256:" + "a" * 64, "size": 300,
              "manifests": [{"digest": "sha256:" + "b" * 64}]},
    Image={"linux/amd64": {"architecture": "amd64", "config": {"Env": ["A=1"]}},
           "linux/arm64": {"architecture": "arm64"}},
)


def render(template: str) -> str:
    return parse(template).render(DATA)


def test_field_paths_match_json_keys_case_insensitively() -> None:
    assert render("{{.Name}}") == "reg:5000/app:1"
    assert render("{{.Manifest.Digest}}") == "sha256:" + "a" * 64
    assert render("{{.Manifest.MediaType}} {{.Manifest.mediaType}}").count("index.v1") == 2
    assert render("size={{ .Manifest.Size }}!") == "size=300!"


def test_json_is_indented_and_roundtrips() -> None:
    out = render("{{json .Manifest}}")
    assert out.startswith('{\n  "schemaVersion": 2,')
    assert json.loads(out) == DATA["Manifest"]
    assert json.loads(render("{{json .}}"))["Name"] == "reg:5000/app:1"


def test_index_print_println_pipes_and_parentheses() -> None:
    assert render('{{index .Image "linux/arm64" "architecture"}}') == "arm64"
    assert render("{{index .Manifest.Manifests 0 | json}}") == \
        json.dumps({"digest": "sha256:" + "b" * 64}, indent=2)
    assert json.loads(render('{{json (index .Image "linux/amd64")}}'))["config"]["Env"] == \
        ["A=1"]
    assert render('{{println .Name "x"}}') == "reg:5000/app:1 x\n"
    assert render('{{print .Manifest.Size .Manifest.SchemaVersion "s" 1}}') == "300 2s1"
    assert render('{{"a\\tb"}}') == "a\tb"


def test_trim_markers_and_comments() -> None:
    assert render("a  {{- .Name -}}  \n b") == "areg:5000/app:1b"
    assert render("x{{/* note */}}y") == "xy"


def test_missing_nested_key_prints_no_value_and_lists_print_as_json() -> None:
    assert render("{{.Manifest.Nope}}") == "<no value>"
    assert render('{{index .Image "windows/amd64"}}') == "<no value>"
    assert render("{{.Manifest.Manifests}}") == '[{"digest":"sha256:' + "b" * 64 + '"}]'


def test_lazy_values_are_computed_once_and_only_when_read() -> None:
    calls: list[int] = []

    def compute() -> dict[str, str]:
        calls.append(1)
        return {"architecture": "riscv64"}

    data = Fields(Name="n", Image=Lazy(compute))
    assert parse("{{.Name}}").render(data) == "n"
    assert calls == []
    assert parse("{{.Image.Architecture}}/{{.Image.architecture}}").render(data) == \
        "riscv64/riscv64"
    assert calls == [1]


@pytest.mark.parametrize("template, why", [
    ("{{.Bogus}}", "no field 'Bogus'"),
    ("{{if .Name}}x{{end}}", "'if' blocks are not supported"),
    ("{{range .Image}}x{{end}}", "'range' blocks are not supported"),
    ("{{upper .Name}}", "unknown function 'upper'"),
    ("{{.Name", "unclosed action"),
    ("{{}}", "empty action"),
    ("{{.Name .Manifest}}", "several values without a function"),
    ("{{json (index .Image}}", "missing ')'"),
    ("{{$x := .Name}}", "unsupported syntax"),
    ('{{"\\q"}}', "unsupported escape"),
    ("{{.Name | .Manifest}}", "a pipe must lead to a function"),
    ("{{json .Name .Name}}", "json takes one argument"),
])
def test_unsupported_templates_fail_with_a_clear_usage_error(template: str, why: str) -> None:
    with pytest.raises(TemplateError) as err:
        render(template)
    assert why in err.value.message
    assert isinstance(err.value, UsageError)
