"""Definition: marshal/unmarshal round trip, vertex walking, and validation errors."""

from __future__ import annotations

import pytest

from buildkit_py import llb
from buildkit_py.errors import UserError
from buildkit_py.llb import ops_pb2
from buildkit_py.llb.definition import check_acyclic
from buildkit_py.llb.digest import digest_op, serialize_op

AMD64 = "linux/amd64"


def _source(ident: str) -> ops_pb2.Op:
    op = ops_pb2.Op()
    op.source.identifier = ident
    return op


def _definition(*ops: ops_pb2.Op, head: ops_pb2.Input | None = None) -> bytes:
    """Hand-assemble Definition bytes; the return op points at ``head`` or the last op."""
    proto = ops_pb2.Definition()
    proto.def_.extend(serialize_op(op) for op in ops)
    ret = ops_pb2.Op()
    if head is not None:
        ret.inputs.append(head)
    elif ops:
        ret.inputs.add(digest=digest_op(ops[-1]), index=0)
    proto.def_.append(serialize_op(ret))
    return proto.SerializeToString()


def test_round_trip_keeps_ops_metadata_and_sources() -> None:
    df = llb.SourceFile("Dockerfile", b"FROM alpine\nRUN echo hi\n")
    st = (
        llb.image("alpine", platform=AMD64, location=df.location(1))
        .run(["echo", "hi"], description="RUN echo hi", location=df.location(2), ignore_cache=True)
        .root()
    )
    d = st.marshal()
    again = llb.Definition.from_bytes(d.to_bytes())
    assert again.to_bytes() == d.to_bytes()
    assert again.digests() == d.digests()
    assert again.head_digest == d.head_digest
    head = again.vertex(again.head_digest or "")
    assert head.kind == "exec"
    assert head.name == "RUN echo hi"
    assert head.metadata.ignore_cache
    [loc] = again.locations(head.digest)
    assert (loc.filename, loc.start_line, loc.end_line, loc.lines) == (
        "Dockerfile", 2, 2, ("RUN echo hi",))


def test_vertices_come_inputs_first_with_return_op_excluded() -> None:
    base = llb.image("alpine", platform=AMD64)
    d = base.run(["a"]).root().run(["b"]).root().marshal()
    kinds = [v.kind for v in d.vertices()]
    assert kinds == ["source", "exec", "exec"]
    position = {dg: i for i, dg in enumerate(d.digests())}
    for v in d.vertices():
        for inp in v.op.inputs:
            assert position[inp.digest] < position[v.digest]
    assert len(d) == 3
    assert d.head is not None
    assert d.proto.def_[-1] == serialize_op(ops_pb2.Op(inputs=[d.head]))


def test_scratch_marshals_to_a_definition_without_head() -> None:
    d = llb.scratch().marshal()
    assert d.head is None and len(d) == 0
    assert llb.Definition.from_bytes(d.to_bytes()).head is None


def test_garbage_bytes_are_rejected_with_a_user_error() -> None:
    with pytest.raises(UserError, match="cannot decode build definition"):
        llb.Definition.from_bytes(b"\xff\xff\xff")


def test_empty_definition_is_rejected() -> None:
    with pytest.raises(llb.InvalidDefinitionError, match="empty"):
        llb.Definition.from_bytes(b"")


def test_unknown_input_digest_is_rejected() -> None:
    exec_op = ops_pb2.Op()
    exec_op.inputs.add(digest="sha256:" + "0" * 64, index=0)
    exec_op.exec.meta.args.append("true")
    exec_op.exec.mounts.add(input=0, dest="/", output=0)
    with pytest.raises(llb.InvalidDefinitionError, match="unknown input 'sha256:0000"):
        llb.Definition.from_bytes(_definition(exec_op))


def test_input_output_index_out_of_range_is_rejected() -> None:
    src = _source("docker-image://docker.io/library/alpine:latest")
    user = ops_pb2.Op()
    user.inputs.add(digest=digest_op(src), index=3)  # a source has only output 0
    user.exec.meta.args.append("true")
    user.exec.mounts.add(input=0, dest="/", output=0)
    with pytest.raises(llb.InvalidDefinitionError, match="uses output 3 of"):
        llb.Definition.from_bytes(_definition(src, user))


def test_mount_input_index_out_of_range_is_rejected() -> None:
    src = _source("docker-image://docker.io/library/alpine:latest")
    user = ops_pb2.Op()
    user.inputs.add(digest=digest_op(src), index=0)
    user.exec.meta.args.append("true")
    user.exec.mounts.add(input=1, dest="/", output=0)
    with pytest.raises(llb.InvalidDefinitionError, match="mount '/' input index 1 out of range"):
        llb.Definition.from_bytes(_definition(src, user))


def test_file_action_may_not_read_a_later_action() -> None:
    src = _source("docker-image://docker.io/library/alpine:latest")
    fop = ops_pb2.Op()
    fop.inputs.add(digest=digest_op(src), index=0)
    # Action 0 names index 1 = the result of action 0 itself.
    fop.file.actions.add(input=1, secondary_input=-1, output=0).mkdir.path = "/x"
    with pytest.raises(llb.InvalidDefinitionError, match="action 0 input index 1 out of range"):
        llb.Definition.from_bytes(_definition(src, fop))


def test_return_op_head_must_exist() -> None:
    src = _source("local://context")
    bad_head = ops_pb2.Input(digest="sha256:" + "1" * 64, index=0)
    with pytest.raises(llb.InvalidDefinitionError, match="return op refers to unknown input"):
        llb.Definition.from_bytes(_definition(src, head=bad_head))


def test_last_op_must_be_the_return_op() -> None:
    proto = ops_pb2.Definition()
    proto.def_.append(serialize_op(_source("local://context")))
    with pytest.raises(llb.InvalidDefinitionError, match="last op must be the return op"):
        llb.Definition.from_bytes(proto.SerializeToString())


def test_body_less_op_before_the_end_is_rejected() -> None:
    proto = ops_pb2.Definition()
    proto.def_.extend([serialize_op(ops_pb2.Op()), serialize_op(ops_pb2.Op())])
    with pytest.raises(llb.InvalidDefinitionError, match="op #0 has no body"):
        llb.Definition.from_bytes(proto.SerializeToString())


def test_metadata_for_unknown_vertex_is_rejected() -> None:
    d = llb.local("context").marshal()
    proto = ops_pb2.Definition()
    proto.CopyFrom(d.proto)
    proto.metadata["sha256:" + "2" * 64].ignore_cache = True
    with pytest.raises(llb.InvalidDefinitionError, match="metadata for unknown op"):
        llb.Definition.from_proto(proto)


def test_source_location_naming_missing_file_is_rejected() -> None:
    d = llb.local("context", location=llb.source_location("Dockerfile", 1)).marshal()
    proto = ops_pb2.Definition()
    proto.CopyFrom(d.proto)
    del proto.source.infos[:]
    with pytest.raises(llb.InvalidDefinitionError, match="names source file #0"):
        llb.Definition.from_proto(proto)


def test_cycle_is_reported_with_a_vertex_on_it() -> None:
    # Content addressing makes a cycle impossible to encode in real bytes, so the
    # check is exercised on a hand-made edge map.
    edges = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    with pytest.raises(llb.InvalidDefinitionError, match="cycle through"):
        check_acyclic(edges)
    check_acyclic({"a": ["b", "c"], "b": ["c"], "c": []})


def test_duplicate_op_is_rejected() -> None:
    src = _source("local://context")
    proto = ops_pb2.Definition()
    proto.def_.extend([serialize_op(src), serialize_op(src)])
    proto.def_.append(serialize_op(ops_pb2.Op(inputs=[ops_pb2.Input(digest=digest_op(src))])))
    with pytest.raises(llb.InvalidDefinitionError, match="appears twice"):
        llb.Definition.from_bytes(proto.SerializeToString())
