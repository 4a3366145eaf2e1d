"""Conversion plans: Anthropic JSON (Python dicts) <-> sidecar.messages.v1 protobuf messages.

A plan is compiled once per message type, at import, from the descriptors and the custom options
in ``proto/sidecar/messages/v1/options.proto``. Converting is then a tight loop of dict lookups
and closures: no descriptor walking, no ``json_format`` per call.

Direction JSON -> proto builds plain keyword dicts (``{"text": {"text": "hi"}}``) and hands the
whole tree to one message constructor, which upb fills in C. Direction proto -> JSON walks
``ListFields()`` (only the fields that are set) with one handler per field descriptor, and
``WhichOneof`` for type unions. Error paths (``messages.0.content.1.input``) are assembled only
while a ``BadProto`` unwinds, so the happy path pays nothing for them.

The rule that makes it lossless: a JSON member goes into its typed field only if the value fits
that field exactly - ``str`` for string, ``bool`` for bool, ``int`` (not bool, within int64) for
int64, ``float`` for double, a non-empty list whose items all fit for repeated, a dict for a
message, any JSON value for a JSON-text field. Everything else (nulls, other JSON types, empty
lists, unknown members) is kept verbatim in the object's ``extra_json``; an object whose ``type``
a type union does not know is kept whole in the union's ``unknown_json``.

Shapes (see the conventions at the top of messages.proto):

- *struct*: a JSON object; fields named as the JSON members, last field ``extra_json``.
- *union*: a JSON object selected by its ``type``; one oneof whose last case is ``unknown_json``.
  A case's message drops ``type`` (it is implied by the case) unless it has a ``type`` field.
- *array*: a bare JSON array (``option (array) = true``), one field ``repeated ... items = 1``.
- Other oneofs in a struct: one JSON member (the oneof name) whose JSON kind selects the case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from sidecar.core.jsonbytes import BAD_JSON
from sidecar.messages.v1 import options_pb2

__all__ = ["NOFIT", "BadProto", "Plan", "plan_for"]

EXTRA = "extra_json"
UNKNOWN = "unknown_json"
_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_DIGITS = "0123456789"

_encode = msgspec.json.encode
_decode = msgspec.json.decode
_DecodeError = BAD_JSON  # msgspec's, invalid UTF-8, nesting too deep

ToHandler = Callable[[Any, dict[str, Any]], bool]
FromHandler = Callable[[Any, dict[str, Any]], None]


class _NoFit:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOFIT"


# Returned by a plan's ``to`` when the JSON value cannot be its message (not a dict / not a list).
NOFIT: Any = _NoFit()
_MISSING: Any = object()


class BadProto(Exception):
    """A proto value that has no JSON meaning (invalid JSON text, extra_json not an object ...).

    ``path`` is filled while the error unwinds, innermost component first, so the happy path pays
    nothing for it.
    """

    def __init__(self, message: str, key: str | int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str | int] = [] if key is None else [key]

    def where(self) -> str:
        return ".".join(str(p) for p in reversed(self.path))


class Plan:
    """How one message type maps to JSON: ``to(json) -> kwargs | NOFIT``, ``frm(msg) -> json``."""

    __slots__ = ("desc", "frm", "kind", "tag", "to")

    def __init__(self, desc: Descriptor, kind: str, tag: str | None) -> None:
        self.desc = desc
        self.kind = kind  # "struct", "union" or "array"
        self.tag = tag  # the implied `type` a union case re-emits, or None
        self.to: Callable[[Any], Any] = _unbuilt
        self.frm: Callable[[Any], Any] = _unbuilt

    def __repr__(self) -> str:
        return f"Plan({self.desc.full_name}, {self.kind}, tag={self.tag!r})"


def _unbuilt(_: Any) -> Any:  # pragma: no cover - replaced before any conversion runs
    raise RuntimeError("conversion plan used before it was built")


_PLANS: dict[tuple[str, str | None], Plan] = {}


def plan_for(desc: Descriptor, tag: str | None = None) -> Plan:
    """The (cached) plan for a message type; ``tag`` for a union case that drops ``type``."""
    key = (desc.full_name, tag)
    plan = _PLANS.get(key)
    if plan is None:
        kind = _kind_of(desc)
        plan = _PLANS[key] = Plan(desc, kind, tag)
        # Registered before building, so recursive types (blocks inside tool results) resolve.
        try:
            if kind == "array":
                _build_array(plan)
            elif kind == "union":
                _build_union(plan)
            else:
                _build_struct(plan)
        except BaseException:
            del _PLANS[key]
            raise
    return plan


# --- descriptor helpers -------------------------------------------------------------------------


def _kind_of(desc: Descriptor) -> str:
    if _option(desc, options_pb2.array):
        return "array"
    if UNKNOWN in desc.fields_by_name:
        return "union"
    return "struct"


def _proto3_optional(desc: Descriptor) -> set[str]:
    proto = descriptor_pb2.DescriptorProto()
    desc.CopyToProto(proto)
    return {f.name for f in proto.field if f.proto3_optional}


def _option(holder: Any, extension: Any) -> Any:
    """A custom option's value (the stubs cannot type extensions generated without mypy-protobuf)."""
    return holder.GetOptions().Extensions[extension]


def _is_json_text(fd: FieldDescriptor) -> bool:
    return bool(_option(fd, options_pb2.json_text))


def _message_type(fd: FieldDescriptor) -> Descriptor:
    desc = fd.message_type
    if desc is None:  # pragma: no cover - only called for TYPE_MESSAGE fields
        raise TypeError(f"{fd.full_name} is not a message field")
    return desc


def _fail(desc: Descriptor, message: str) -> TypeError:
    return TypeError(f"{desc.full_name}: {message}")


# --- JSON -> proto handlers: h(value, kwargs) -> fitted? ----------------------------------------


def _to_exact(pname: str, typ: type) -> ToHandler:
    def h(v: Any, kw: dict[str, Any]) -> bool:
        if type(v) is typ:
            kw[pname] = v
            return True
        return False

    return h


def _to_int(pname: str) -> ToHandler:
    def h(v: Any, kw: dict[str, Any]) -> bool:
        if type(v) is int and _INT_MIN <= v <= _INT_MAX:
            kw[pname] = v
            return True
        return False

    return h


def _to_json(pname: str) -> ToHandler:
    def h(v: Any, kw: dict[str, Any]) -> bool:
        kw[pname] = _encode(v).decode()
        return True

    return h


def _to_message(pname: str, sub: Plan) -> ToHandler:
    def h(v: Any, kw: dict[str, Any]) -> bool:
        r = sub.to(v)
        if r is NOFIT:
            return False
        kw[pname] = r
        return True

    return h


def _to_rep_exact(pname: str, typ: type) -> ToHandler:
    def h(v: Any, kw: dict[str, Any]) -> bool:
        if type(v) is not list or not v:
            return False
        for x in v:
            if type(x) is not typ:
                return False
        kw[pname] = v
        return True

    return h


def _to_rep_int(pname: str) -> ToHandler:
    def h(v: Any, kw: dict[str, Any]) -> bool:
        if type(v) is not list or not v:
            return False
        for x in v:
            if type(x) is not int or not _INT_MIN <= x <= _INT_MAX:
                return False
        kw[pname] = v
        return True

    return h


def _to_rep_json(pname: str) -> ToHandler:
    def h(v: Any, kw: dict[str, Any]) -> bool:
        if type(v) is not list or not v:
            return False
        kw[pname] = [_encode(x).decode() for x in v]
        return True

    return h


def _to_rep_message(pname: str, sub: Plan) -> ToHandler:
    # Items are structs or unions: any dict fits them, anything else does not.
    def h(v: Any, kw: dict[str, Any]) -> bool:
        if type(v) is not list or not v:
            return False
        for x in v:
            if type(x) is not dict:
                return False
        to = sub.to
        kw[pname] = [to(x) for x in v]
        return True

    return h


def _consume(v: Any, kw: dict[str, Any]) -> bool:
    # `type` of a union case that implies it: the union already dispatched on it.
    return True


# --- proto -> JSON handlers: h(value, out) ------------------------------------------------------


def _from_scalar(key: str) -> FromHandler:
    def h(v: Any, out: dict[str, Any]) -> None:
        out[key] = v

    return h


def _from_rep_scalar(key: str) -> FromHandler:
    def h(v: Any, out: dict[str, Any]) -> None:
        out[key] = list(v)

    return h


def _from_json(key: str) -> FromHandler:
    def h(v: Any, out: dict[str, Any]) -> None:
        try:
            out[key] = _decode(v)
        except _DecodeError:
            raise BadProto("invalid JSON text", key) from None

    return h


def _from_rep_json(key: str) -> FromHandler:
    def h(v: Any, out: dict[str, Any]) -> None:
        try:
            out[key] = [_decode(x) for x in v]
        except _DecodeError:
            for i, x in enumerate(v):
                try:
                    _decode(x)
                except _DecodeError:
                    err = BadProto("invalid JSON text", i)
                    err.path.append(key)
                    raise err from None
            raise  # pragma: no cover

    return h


def _from_message(key: str, sub: Plan) -> FromHandler:
    def h(v: Any, out: dict[str, Any]) -> None:
        try:
            out[key] = sub.frm(v)
        except BadProto as e:
            e.path.append(key)
            raise

    return h


def _items_from(frm: Callable[[Any], Any], items: Any) -> list[Any]:
    try:
        return [frm(x) for x in items]
    except BadProto:
        # Find which item failed (only on the error path, so the list comprehension stays fast).
        for i, x in enumerate(items):
            try:
                frm(x)
            except BadProto as e:
                e.path.append(i)
                raise
        raise  # pragma: no cover


def _from_rep_message(key: str, sub: Plan) -> FromHandler:
    def h(v: Any, out: dict[str, Any]) -> None:
        try:
            out[key] = _items_from(sub.frm, v)
        except BadProto as e:
            e.path.append(key)
            raise

    return h


def _from_extra(v: Any, out: dict[str, Any]) -> None:
    # extra_json has the highest field number, so ListFields() yields it last: merge after the
    # typed members.
    try:
        extra = _decode(v)
    except _DecodeError:
        raise BadProto("invalid JSON text", EXTRA) from None
    if type(extra) is not dict:
        raise BadProto("not a JSON object", EXTRA)
    if not out.keys().isdisjoint(extra):
        dup = sorted(out.keys() & extra.keys())
        raise BadProto(f"member(s) {', '.join(map(repr, dup))} also set by a typed field", EXTRA)
    out.update(extra)


# --- plan builders --------------------------------------------------------------------------------

# JSON kinds of singular scalar fields (the value is stored as is in both directions).
_SCALAR_KINDS = (str, bool, float, int)

_TO_EXACT = {
    FieldDescriptor.TYPE_STRING: str,
    FieldDescriptor.TYPE_BOOL: bool,
    FieldDescriptor.TYPE_DOUBLE: float,
}


def _field_handlers(
    desc: Descriptor, fd: FieldDescriptor, pname: str, key: str
) -> tuple[ToHandler, FromHandler, type]:
    """Handlers for field ``fd`` (proto name ``pname``) seen as JSON member ``key``.

    Also returns the Python type of the JSON values that can fit (for value-shaped oneofs).
    """
    repeated = fd.is_repeated
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        sub = plan_for(_message_type(fd))
        if repeated:
            if sub.kind == "array":
                raise _fail(desc, f"{fd.name}: repeated array wrappers are not supported")
            return _to_rep_message(pname, sub), _from_rep_message(key, sub), list
        return _to_message(pname, sub), _from_message(key, sub), list if sub.kind == "array" else dict
    if fd.type == FieldDescriptor.TYPE_STRING and _is_json_text(fd):
        if repeated:
            return _to_rep_json(pname), _from_rep_json(key), list
        if fd.has_presence:
            raise _fail(desc, f"{fd.name}: a json_text field is not optional ('' means absent)")
        return _to_json(pname), _from_json(key), object
    if fd.type in _TO_EXACT:
        typ = _TO_EXACT[fd.type]
        if repeated:
            return _to_rep_exact(pname, typ), _from_rep_scalar(key), list
        return _to_exact(pname, typ), _from_scalar(key), typ
    if fd.type == FieldDescriptor.TYPE_INT64:
        if repeated:
            return _to_rep_int(pname), _from_rep_scalar(key), list
        return _to_int(pname), _from_scalar(key), int
    raise _fail(desc, f"{fd.name}: field type {fd.type} is not supported (use string/bool/int64/double)")


def _build_struct(plan: Plan) -> None:
    desc = plan.desc
    extra = desc.fields_by_name.get(EXTRA)
    if extra is None or extra.type != FieldDescriptor.TYPE_STRING or extra.is_repeated:
        raise _fail(desc, f"an object message needs `string {EXTRA}`")
    if any(f.number > extra.number for f in desc.fields):
        raise _fail(desc, f"{EXTRA} must have the highest field number")
    optional = _proto3_optional(desc)
    to: dict[str, ToHandler] = {}
    frm: dict[FieldDescriptor, FromHandler | str] = {extra: _from_extra}
    oneof_cases: dict[str, dict[type, ToHandler]] = {}
    for fd in desc.fields:
        if fd is extra:
            continue
        oneof = fd.containing_oneof
        if oneof is not None and fd.name not in optional:
            # A value-shaped oneof: JSON member `oneof.name`, the JSON kind selects the case.
            key = oneof.name
            if key in desc.fields_by_name:
                raise _fail(desc, f"oneof {key} has the name of a field")
            h_to, h_from, kind = _field_handlers(desc, fd, fd.name, key)
            cases = oneof_cases.setdefault(key, {})
            if kind is object or kind in cases:
                raise _fail(desc, f"oneof {key}: each case needs a distinct JSON kind ({fd.name})")
            cases[kind] = h_to
            frm[fd] = h_from
            continue
        if not fd.is_repeated and fd.type != FieldDescriptor.TYPE_MESSAGE:
            if fd.name not in optional and not _is_json_text(fd):
                raise _fail(desc, f"{fd.name}: scalar fields must be `optional` so presence survives")
        h_to, h_from, kind = _field_handlers(desc, fd, fd.name, fd.name)
        to[fd.name] = h_to
        frm[fd] = fd.name if kind in _SCALAR_KINDS else h_from
    for key, cases in oneof_cases.items():
        to[key] = _to_oneof(cases)
    if plan.tag is not None:
        if "type" in to:  # pragma: no cover - plan_for only asks for a tag without a type field
            raise _fail(desc, "a union case with a `type` field keeps it; it has no implied tag")
        to["type"] = _consume
    # Singular string/bool/double fields outside oneofs: JSON key == field name, exact type check.
    exact = {
        fd.name: _TO_EXACT[fd.type]
        for fd in desc.fields
        if fd.name in to
        and fd.type in _TO_EXACT
        and not fd.is_repeated
        and fd.name in optional
        and not _is_json_text(fd)
    }
    plan.to = _struct_to(to, exact)
    plan.frm = _struct_from(frm, plan.tag)


def _to_oneof(cases: dict[type, ToHandler]) -> ToHandler:
    get = cases.get

    def h(v: Any, kw: dict[str, Any]) -> bool:
        case = get(type(v))
        return case is not None and case(v, kw)

    return h


def _struct_to(handlers: dict[str, ToHandler], exact: dict[str, type]) -> Callable[[Any], Any]:
    get = handlers.get
    exact_type = exact.get

    def to(d: Any) -> Any:
        if type(d) is not dict:
            return NOFIT
        kw: dict[str, Any] = {}
        extra: dict[str, Any] | None = None
        for k, v in d.items():
            # Fast path: a string/bool/double member that fits its field (no handler call).
            if type(v) is exact_type(k):
                kw[k] = v
                continue
            h = get(k)
            if h is None or not h(v, kw):
                if extra is None:
                    extra = {k: v}
                else:
                    extra[k] = v
        if extra is not None:
            kw[EXTRA] = _encode(extra).decode()
        return kw

    return to


def _struct_from(handlers: dict[FieldDescriptor, FromHandler | str], tag: str | None) -> Callable[[Any], Any]:
    # A str handler is the JSON key of a singular scalar: the value is stored as is (no call).
    first: dict[str, Any] = {} if tag is None else {"type": tag}

    def frm(m: Any) -> Any:
        out = first.copy()
        for fd, v in m.ListFields():
            h = handlers[fd]
            if isinstance(h, str):
                out[h] = v
            else:
                h(v, out)
        return out

    return frm


def _build_array(plan: Plan) -> None:
    desc = plan.desc
    items = desc.fields_by_name.get("items")
    if len(desc.fields) != 1 or items is None or not items.is_repeated or items.number != 1:
        raise _fail(desc, "an (array) message has exactly one field: `repeated ... items = 1`")
    if items.type != FieldDescriptor.TYPE_MESSAGE:
        raise _fail(desc, "(array) of scalars is not supported")
    sub = plan_for(_message_type(items))
    if sub.kind == "array":
        raise _fail(desc, "(array) of arrays is not supported")

    def to(v: Any) -> Any:
        if type(v) is not list:
            return NOFIT
        for x in v:
            if type(x) is not dict:
                return NOFIT
        item_to = sub.to
        return {"items": [item_to(x) for x in v]}

    def frm(m: Any) -> Any:
        return _items_from(sub.frm, m.items)

    plan.to = to
    plan.frm = frm


def _build_union(plan: Plan) -> None:
    desc = plan.desc
    unknown = desc.fields_by_name[UNKNOWN]
    oneof = unknown.containing_oneof
    if oneof is None or len(desc.oneofs) != 1 or len(oneof.fields) != len(desc.fields):
        raise _fail(desc, f"a type union is one oneof holding every field, `{UNKNOWN}` included")
    if unknown.type != FieldDescriptor.TYPE_STRING:
        raise _fail(desc, f"{UNKNOWN} must be a string")
    tags: dict[str, tuple[str, Plan]] = {}
    prefixes: dict[str, tuple[str, Plan]] = {}
    untagged: tuple[str, Plan] | None = None
    frm: dict[FieldDescriptor, Callable[[Any], Any]] = {unknown: _unknown_from}
    for fd in desc.fields:
        if fd is unknown:
            continue
        if fd.type != FieldDescriptor.TYPE_MESSAGE:
            raise _fail(desc, f"{fd.name}: union cases are messages (besides {UNKNOWN})")
        prefix: str = _option(fd, options_pb2.tag_prefix)
        tag: str = _option(fd, options_pb2.tag) or fd.name
        is_untagged: bool = _option(fd, options_pb2.untagged)
        case_desc = _message_type(fd)
        type_fd = case_desc.fields_by_name.get("type")
        keeps_type = type_fd is not None
        if type_fd is not None and (type_fd.type != FieldDescriptor.TYPE_STRING or type_fd.is_repeated):
            raise _fail(desc, f"{fd.name}: the case's `type` field must be a string")
        if (prefix or is_untagged) and not keeps_type:
            raise _fail(desc, f"{fd.name}: (tag_prefix)/(untagged) cases keep `type` in a field")
        sub = plan_for(case_desc, None if keeps_type else tag)
        if sub.kind != "struct":
            raise _fail(desc, f"{fd.name}: a union case is an object message")
        case = (fd.name, sub)
        if prefix:
            if not prefix.endswith("_") or prefix in prefixes:
                raise _fail(desc, f"{fd.name}: tag_prefix must end with '_' and be unique")
            prefixes[prefix] = case
        else:
            if tag in tags:
                raise _fail(desc, f"{fd.name}: tag {tag!r} selects two cases")
            tags[tag] = case
        if is_untagged:
            if untagged is not None:
                raise _fail(desc, "only one case may be (untagged)")
            untagged = case
        frm[fd] = _case_from(sub, tag, prefix, is_untagged) if keeps_type else sub.frm
    plan.to = _union_to(tags, prefixes, untagged)
    plan.frm = _union_from(frm, oneof.name)


def _union_to(
    tags: dict[str, tuple[str, Plan]],
    prefixes: dict[str, tuple[str, Plan]],
    untagged: tuple[str, Plan] | None,
) -> Callable[[Any], Any]:
    get_tag = tags.get
    get_prefix = prefixes.get

    def to(d: Any) -> Any:
        if type(d) is not dict:
            return NOFIT
        t = d.get("type", _MISSING)
        if type(t) is str:
            case = get_tag(t)
            if case is None and prefixes:
                stem = t.rstrip(_DIGITS)
                if len(stem) != len(t):
                    case = get_prefix(stem)
        elif t is _MISSING:
            case = untagged
        else:
            case = None
        if case is None:
            return {UNKNOWN: _encode(d).decode()}
        return {case[0]: case[1].to(d)}

    return to


def _union_from(cases: dict[FieldDescriptor, Callable[[Any], Any]], oneof: str) -> Callable[[Any], Any]:
    # WhichOneof + getattr is cheaper than ListFields for a message with one field set.
    by_name = {fd.name: case for fd, case in cases.items()}

    def frm(m: Any) -> Any:
        name = m.WhichOneof(oneof)
        if name is None:
            raise BadProto(f"no case of oneof `{oneof}` is set")
        return by_name[name](getattr(m, name))

    return frm


def _unknown_from(v: Any) -> Any:
    try:
        d = _decode(v)
    except _DecodeError:
        raise BadProto("invalid JSON text", UNKNOWN) from None
    if type(d) is not dict:
        raise BadProto("not a JSON object", UNKNOWN)
    return d


def _is_digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def _case_from(sub: Plan, tag: str, prefix: str, untagged: bool) -> Callable[[Any], Any]:
    """A case whose message keeps `type`: check it still selects this case."""
    frm = sub.frm

    def case_from(m: Any) -> Any:
        out = frm(m)
        t = out.get("type", _MISSING)
        if prefix:
            ok = type(t) is str and t.startswith(prefix) and _is_digits(t[len(prefix) :])
            want = f"{prefix}<digits>"
        else:
            ok = t == tag or (t is _MISSING and untagged)
            want = repr(tag) + (" or absent" if untagged else "")
        if not ok:
            raise BadProto(f"must be {want}", "type")
        return out

    return case_from
