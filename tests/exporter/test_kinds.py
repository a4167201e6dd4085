"""One exporter per output type, chosen from the parsed ``--output``."""

from __future__ import annotations

import pytest

from buildkit_py.api.outputs import OUTPUT_KINDS, OutputSpec, parse_output
from buildkit_py.errors import UsageError
from buildkit_py.exporter.kinds import EXPORTERS, exporters_for


def test_every_output_type_has_an_exporter() -> None:
    assert list(EXPORTERS) == list(OUTPUT_KINDS)


def test_exporters_keep_the_order_asked_and_their_spec() -> None:
    specs = [parse_output("type=local,dest=out"), parse_output("type=oci,dest=o.tar"),
             OutputSpec("image", {"push": "true"})]
    exporters = exporters_for(specs)
    assert [e.spec for e in exporters] == specs
    assert [e.makes_image for e in exporters] == [False, True, True]


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown output type 'cacheonly'"):
        exporters_for([OutputSpec("cacheonly")])


@pytest.mark.parametrize(("spec", "pushes", "leaves", "tar_file", "client_side"), [
    ("type=image", False, False, False, False),
    ("type=image,push=true", True, True, False, False),
    ("type=registry", True, True, False, False),
    ("type=oci,dest=o.tar", False, True, True, True),
    ("type=oci,dest=o,tar=false", False, True, False, True),
    ("type=docker", False, True, True, True),
    ("type=local,dest=out", False, False, False, True),
    ("type=tar,dest=o.tar", False, False, True, True),
])
def test_what_each_kind_means(spec: str, pushes: bool, leaves: bool, tar_file: bool,
                              client_side: bool) -> None:
    o = parse_output(spec)
    assert (o.pushes, o.leaves_builder, o.is_tar_file, o.client_side) == \
        (pushes, leaves, tar_file, client_side)


def test_docker_defaults_to_docker_media_types() -> None:
    assert not parse_output("type=docker").oci_mediatypes
    assert parse_output("type=docker,oci-mediatypes=true").oci_mediatypes
    assert parse_output("type=oci,dest=o").oci_mediatypes
    assert parse_output("type=oci,dest=o").as_layout("x").attrs["oci-mediatypes"] == "true"
    assert parse_output("type=docker").as_layout("x").attrs["oci-mediatypes"] == "false"
