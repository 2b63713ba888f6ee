"""What the installed provider SDKs declare: a resource's output properties and input arguments, and an invoke's
result type, each as ``{wire name: Python type}``. Used inside the capture worker, where the program has imported its
SDKs; the classes are learnt as the program uses them (see :class:`SdkSchema`), so no registry of pulumi's is read.
"""

from __future__ import annotations

import enum
import importlib
import typing
from collections import abc
from typing import Any, Callable, Mapping

from ps019.engine import placeholders
from ps019.engine.values import UNKNOWN_SENTINELS

MAX_DEPTH = 4


class SdkSchema:
    """Classes seen while the program runs: resource classes by type token (from ``Resource.__init__``) and invoke
    result types by function token (from ``pulumi.runtime.invoke``/``invoke_output``'s ``typ``)."""

    def __init__(self) -> None:
        self.resource_classes: dict[str, type] = {}
        self.result_types: dict[str, type] = {}
        self.unshaped: list[str] = []  # "<where>: <type>" the filler could not shape

    def install(self) -> None:
        import pulumi
        import pulumi.runtime
        from pulumi import resource as resource_module

        original_init = resource_module.Resource.__init__
        classes = self.resource_classes

        def recording_init(res, t, name, *args, **kwargs):  # noqa: ANN001 - pulumi's own signature
            classes.setdefault(t, type(res))
            return original_init(res, t, name, *args, **kwargs)

        resource_module.Resource.__init__ = recording_init  # type: ignore[method-assign]
        for attr in ("invoke", "invoke_output", "invoke_async"):
            original = getattr(pulumi.runtime, attr, None)
            if original is not None:
                setattr(pulumi.runtime, attr, self._recording_invoke(original))
        del pulumi

    def _recording_invoke(self, original: Callable) -> Callable:
        types = self.result_types

        def wrapper(tok, props, opts=None, typ=None, *args, **kwargs):  # noqa: ANN001
            if typ is not None:
                types.setdefault(tok, typ)
            return original(tok, props, opts, typ, *args, **kwargs)

        return wrapper

    # ------------------------------------------------------------------------------------------------------------

    def output_types(self, token: str) -> dict[str, Any]:
        cls = self.resource_classes.get(token)
        if cls is None:
            return {}
        import pulumi._types as pulumi_types

        try:
            return dict(pulumi_types.resource_types(cls))
        except Exception:  # noqa: BLE001 - an SDK whose hints do not resolve: shape nothing, say so
            self.unshaped.append(f"{token}: its SDK type hints do not resolve")
            return {}

    def input_names(self, token: str) -> set[str] | None:
        """Wire names of the resource's input arguments (``<Class>Args``), or None when unknown."""
        cls = self.resource_classes.get(token)
        if cls is None:
            return None
        module = importlib.import_module(cls.__module__)
        args_cls = getattr(module, f"{cls.__name__}Args", None)
        if args_cls is None:
            return None
        import pulumi._types as pulumi_types

        try:
            return set(pulumi_types.input_type_types(args_cls))
        except Exception:  # noqa: BLE001
            return None

    def result_fields(self, token: str) -> dict[str, Any] | None:
        typ = self.result_types.get(token)
        if typ is None:
            return None
        import pulumi._types as pulumi_types

        try:
            return dict(pulumi_types.output_type_types(typ))
        except Exception:  # noqa: BLE001
            return None


class Filler:
    """Builds a deterministic value of a declared type for one resource or invoke (``ctx``: type token, logical
    name, inputs, seed, region)."""

    def __init__(self, schema: SdkSchema, *, rtype: str, logical: str, inputs: Mapping[str, Any], seed: str,
                 region: str, resource_ref: Callable[[type, str], Any] | None = None) -> None:
        self.schema = schema
        self.rtype, self.logical, self.inputs, self.seed, self.region = rtype, logical, inputs, seed, region
        self.resource_ref = resource_ref

    def value(self, field: str, typ: Any, path: str = "", depth: int = 0) -> Any:
        import pulumi._types as pulumi_types

        typ = pulumi_types.unwrap_optional_type(typ) if typ is not None else typ
        origin = typing.get_origin(typ)
        args = typing.get_args(typ)
        if typ is str or typ is Any or typ is None:
            return placeholders.string_for(field, rtype=self.rtype, logical=self.logical, inputs=self.inputs,
                                           seed=self.seed + path, region=self.region, path=path)
        if typ is bool:
            return False
        if typ in (int, float):
            return placeholders.number_for(field)
        if origin in (list, abc.Sequence, typing.Sequence, tuple) or typ in (list, tuple):
            item = args[0] if args else str
            if depth >= MAX_DEPTH:
                return []
            return [self.value(_singular(field), item, f"{path}.{field}[0]", depth + 1)]
        if origin in (dict, abc.Mapping, typing.Mapping) or typ is dict:
            value_type = args[1] if len(args) == 2 else str
            keys = placeholders.KNOWN_MAP_KEYS.get((self.rtype, field), ())
            return {k: self.value(field, value_type, f"{path}.{field}.{k}", depth + 1) for k in keys}
        if isinstance(typ, type) and pulumi_types.is_output_type(typ):
            if depth >= MAX_DEPTH:
                return {}
            try:
                fields = pulumi_types.output_type_types(typ)
            except Exception:  # noqa: BLE001
                self.schema.unshaped.append(f"{self.rtype}.{field}: {getattr(typ, '__name__', typ)}")
                return {}
            return {name: self.value(name, t, f"{path}.{field}", depth + 1) for name, t in fields.items()}
        if _is_union(typ):
            members = [a for a in args if a is not type(None)]
            return self.value(field, members[0], path, depth) if members else None
        if isinstance(typ, type) and _is_resource_class(typ):
            # A resource-typed output (a remote component's child): a reference to a stand-in resource.
            ref = self.resource_ref(typ, field) if self.resource_ref is not None else None
            if ref is None:
                self.schema.unshaped.append(f"{self.rtype}.{field}: a {typ.__name__} resource")
            return ref
        if isinstance(typ, type) and issubclass(typ, enum.Enum):
            return next(iter(typ)).value  # a member the SDK accepts when it rebuilds the enum
        if isinstance(typ, type) and issubclass(typ, str):  # string enums
            return placeholders.string_for(field, rtype=self.rtype, logical=self.logical, inputs=self.inputs,
                                           seed=self.seed + path, region=self.region, path=path)
        self.schema.unshaped.append(f"{self.rtype}.{field}: {getattr(typ, '__name__', typ)}")
        return None


def _is_resource_class(typ: type) -> bool:
    import pulumi

    return issubclass(typ, pulumi.Resource)


def resource_token(cls: type) -> str | None:
    """The type token a generated SDK resource class registers with (``aws:lb/loadBalancer:LoadBalancer``), read
    from its generated ``_internal_init``/``__init__`` (pulumi codegen passes it to ``super().__init__``)."""
    import inspect
    import re

    for name in ("_internal_init", "__init__"):
        fn = cls.__dict__.get(name)
        if fn is None:
            continue
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            continue
        found = re.findall(r"__init__\(\s*['\"]([A-Za-z0-9_.-]+:[A-Za-z0-9_./-]*:[A-Za-z0-9_]+)['\"]", source)
        if found:
            return found[0]
    return None


def _is_union(typ: Any) -> bool:
    import types as pytypes

    return typing.get_origin(typ) in (typing.Union, getattr(pytypes, "UnionType", None))


def _singular(field: str) -> str:
    return field[:-1] if field.endswith("s") and not field.endswith("ss") else field


def coerce_to_declared(value: Any, typ: Any) -> Any:
    """A program input as the provider returns it when the output is declared a string: structured values (an
    ``iam.PolicyDocumentArgs`` given for ``assume_role_policy``) come back as their JSON text."""
    import json

    import pulumi._types as pulumi_types

    typ = pulumi_types.unwrap_optional_type(typ) if typ is not None else typ
    if typ is str and isinstance(value, (dict, list)) and not _is_special(value):
        text = json.dumps(value, separators=(",", ":"))
        if any(sentinel in text for sentinel in UNKNOWN_SENTINELS.values()):
            return UNKNOWN_SENTINELS["string"]  # the provider cannot render a document with unknown parts
        return text
    return value


def _is_special(value: Any) -> bool:
    from ps019.engine.values import SIG_KEY

    return isinstance(value, dict) and SIG_KEY in value
