"""CloudFormation YAML: a loader and a dumper that keep short-form intrinsics, plus the
line-level splicing that lets convert.py rewrite some resources of a template and leave
every other line (comments included) as it was.

Loading
    `load(text)` gives plain Python data (dict in document order, list, str, int, float,
    bool, None). A short form such as `!Sub '${Fn.Arn}'` becomes a `Tagged` - a dict
    subclass equal to the long form `{"Fn::Sub": "${Fn.Arn}"}` - that remembers its tag
    and whether it was written as a scalar, a sequence or a mapping, so that code reading
    the template sees one shape and the dumper writes the short form back. Every `!Name`
    tag is taken (CloudFormation's: !And !Base64 !Cidr !Condition !Equals !FindInMap
    !ForEach !GetAtt !GetAZs !If !ImportValue !Join !Length !Not !Or !Ref !Select !Split
    !Sub !ToJsonString !Transform, and any later one): `!Ref` is `Ref`, `!Condition` is
    `Condition`, any other `!Name` is `Fn::Name`. `!GetAtt A.B.C` is `["A", "B.C"]`.
    Dates stay strings (`AWSTemplateFormatVersion: 2010-09-09`), duplicate keys are an
    error (CloudFormation refuses them too).

Dumping
    `dump(data)` writes block-style YAML, two spaces, sequences indented under their key,
    short forms where the input had them, multi-line strings as literal blocks, no line
    folding. It keeps key order; it knows no comments.

Splicing
    `Document` keeps the composed node tree (line and column of every key and value) so
    that convert.py can replace the lines of one resource, or of one property, and keep
    the rest of the file byte for byte.
"""
from __future__ import annotations

import re

import yaml

__all__ = [
    "Tagged",
    "YamlError",
    "load",
    "dump",
    "dump_entry",
    "Document",
    "same",
    "SHORT_FORM_TAGS",
]

# Every short form CloudFormation documents (Fn::ForEach, Fn::Length and Fn::ToJsonString
# come with the AWS::LanguageExtensions transform). Any other !Name loads the same way.
SHORT_FORM_TAGS = (
    "!And", "!Base64", "!Cidr", "!Condition", "!Equals", "!FindInMap", "!ForEach",
    "!GetAtt", "!GetAZs", "!If", "!ImportValue", "!Join", "!Length", "!Not", "!Or",
    "!Ref", "!Select", "!Split", "!Sub", "!ToJsonString", "!Transform",
)


class YamlError(ValueError):
    """The text is not a YAML (or JSON) document convert.py can read."""


class Tagged(dict):
    """A one-key dict, the long form of a short-form intrinsic (`{"Fn::Sub": ...}`), that
    remembers how it was written: `tag` ("!Sub"), `kind` ("scalar", "sequence" or
    "mapping"). It compares equal to the plain long form."""

    __slots__ = ("tag", "kind")

    def __init__(self, key, value, tag, kind):
        super().__init__({key: value})
        self.tag = tag
        self.kind = kind

    @property
    def key(self):
        return next(iter(self))

    @property
    def value(self):
        return self[self.key]

    def __deepcopy__(self, memo):
        import copy

        return Tagged(self.key, copy.deepcopy(self.value, memo), self.tag, self.kind)

    def __reduce__(self):
        return (Tagged, (self.key, self.value, self.tag, self.kind))


def _intrinsic_key(name):
    if name == "Ref":
        return "Ref"
    if name == "Condition":
        return "Condition"
    return "Fn::" + name


class _Loader(yaml.SafeLoader):
    """SafeLoader with CloudFormation's short forms, no timestamps, no duplicate keys."""


# Dates and times stay strings: CloudFormation reads `2010-09-09` as a string.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader, node, deep=False):
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(
            None, None, "expected a mapping node, but found %s" % node.id, node.start_mark
        )
    loader.flatten_mapping(node)
    result = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found an unhashable key", key_node.start_mark,
            ) from None
        if key in result:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found duplicate key %r" % (key,), key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=deep)
    return result


def _construct_map(loader, node):
    return _construct_mapping(loader, node, deep=True)


def _construct_tagged(loader, suffix, node):
    name = suffix
    key = _intrinsic_key(name)
    tag = "!" + name
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "GetAtt":
            # !GetAtt Logical.Attribute(.Nested): the logical ID has no dot.
            value = value.split(".", 1) if "." in value else [value]
        return Tagged(key, value, tag, "scalar")
    if isinstance(node, yaml.SequenceNode):
        return Tagged(key, loader.construct_sequence(node, deep=True), tag, "sequence")
    return Tagged(key, _construct_mapping(loader, node, deep=True), tag, "mapping")


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_multi_constructor("!", _construct_tagged)


def _compose(text):
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as err:
        raise YamlError(str(err)) from None
    finally:
        loader.dispose()
    return node, data


def load(text):
    """Parses CloudFormation YAML (or JSON, a subset of it) into data with `Tagged`."""
    return _compose(text)[1]


# --- dumping -----------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow=False, indentless=False):
        # Sequences indented under their mapping key ("Key:\n  - a"), CloudFormation style.
        return super().increase_indent(flow, False)

    def ignore_aliases(self, data):
        return True

    def choose_scalar_style(self):
        # A short form's scalar is plain when YAML allows it (!Ref Name, not !Ref 'Name'):
        # the tag decides its type, so it need not look like a string to the resolver.
        event = self.event
        tag = getattr(event, "tag", None)
        if (
            isinstance(event, yaml.ScalarEvent)
            and tag
            and tag.startswith("!")
            and not tag.startswith("!!")
            and not event.style
        ):
            if self.analysis is None:
                self.analysis = self.analyze_scalar(event.value)
            a = self.analysis
            if not a.empty and not a.multiline and (
                (self.flow_level and a.allow_flow_plain)
                or (not self.flow_level and a.allow_block_plain)
            ):
                return ""
        return super().choose_scalar_style()


def _represent_str(dumper, data):
    if "\n" in data and not data.startswith((" ", "\t")) and not any(
        line != line.rstrip() for line in data.split("\n")
    ):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


def _flat(value):
    """True if a tagged sequence is short and simple enough for flow style."""
    if isinstance(value, Tagged):
        return value.kind == "scalar" or (value.kind == "sequence" and _flat(value.value))
    if isinstance(value, dict):
        return False
    if isinstance(value, list):
        return all(_flat(v) for v in value)
    if isinstance(value, str):
        return "\n" not in value and len(value) < 60
    return True


def _represent_tagged(dumper, data):
    value = data.value
    if data.kind == "scalar":
        if data.key == "Fn::GetAtt" and isinstance(value, list):
            text = ".".join(str(v) for v in value)
        elif isinstance(value, str):
            text = value
        else:
            text = None
        if text is not None:
            style = "|" if "\n" in text and text == text.lstrip(" \t") else None
            return dumper.represent_scalar(data.tag, text, style=style)
    if isinstance(value, list):
        node = dumper.represent_sequence(data.tag, value)
        node.flow_style = _flat(value)
        return node
    if isinstance(value, dict):
        return dumper.represent_mapping(data.tag, value)
    # A scalar value held by a sequence- or mapping-written tag cannot happen on load;
    # for data built by hand write the long form.
    return dumper.represent_mapping("tag:yaml.org,2002:map", {data.key: value})


def _represent_dict(dumper, data):
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items())


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(Tagged, _represent_tagged)


def dump(data):
    """Block-style YAML for `data`, short forms kept, key order kept."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=1 << 16,
        indent=2,
    )


def dump_entry(key, value, indent, comment=None, newline="\n", comment_column=None):
    """Lines (with `newline`) of one `key: value` entry of a block mapping at `indent`
    spaces, with `comment` (a "# ..." string) at the end of the key's line, at
    `comment_column` when the line is short enough (as it was in the input)."""
    text = dump({key: value})
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    pad = " " * indent
    out = [pad + line if line else line for line in lines]
    if comment and out:
        if comment_column is not None and len(out[0]) + 2 <= comment_column:
            out[0] = out[0].ljust(comment_column) + comment
        else:
            out[0] = out[0] + "  " + comment
    return [line + newline for line in out]


# --- comparing ---------------------------------------------------------------------------


def same(a, b):
    """Strict deep equality: True is not 1, key order counts, a Tagged equals its long
    form."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a.keys()) == list(b.keys()) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return type(a) is type(b) and a == b


# --- splicing ----------------------------------------------------------------------------

_BOOL_TAG = "tag:yaml.org,2002:bool"
_CANONICAL_BOOLS = ("true", "false")


class Document:
    """A YAML template with its node tree, for line-level rewriting."""

    def __init__(self, text):
        self.text = text
        self.node, self.data = _compose(text)
        self.lines = text.splitlines(keepends=True)
        self.newline = "\r\n" if "\r\n" in text else "\n"

    # ---- node tree lookups

    @staticmethod
    def mapping_entry(node, key):
        """(key node, value node) of `key` in a mapping node, or None."""
        if not isinstance(node, yaml.MappingNode):
            return None
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k, v
        return None

    @staticmethod
    def is_block_mapping(node):
        return isinstance(node, yaml.MappingNode) and not node.flow_style and bool(node.value)

    def _blank_or_comment(self, i):
        s = self.lines[i].strip() if i < len(self.lines) else ""
        return s == "" or s.startswith("#")

    def content_end(self, node):
        """The last line (0-based) holding content of `node`."""
        if isinstance(node, yaml.ScalarNode):
            end = node.end_mark
            line = end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line
            if node.style in ("|", ">"):
                while line > node.start_mark.line and self.lines[line].strip() == "":
                    line -= 1
            return line
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            if node.flow_style or not node.value:
                end = node.end_mark
                return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line
            last = node.value[-1]
            if isinstance(node, yaml.MappingNode):
                k, v = last
                return max(self.content_end(k), self.content_end(v))
            return self.content_end(last)
        return node.end_mark.line

    def key_line_comment(self, key_node, value_node):
        """(comment, column): the "# ..." comment at the end of the line that holds
        `key_node` if the value does not go on past that line, else (None, None)."""
        line_no = key_node.start_mark.line
        line = self.lines[line_no].rstrip("\r\n")
        if value_node.start_mark.line == line_no:
            if self.content_end(value_node) != line_no:
                return None, None
            rest = line[value_node.end_mark.column:] if value_node.end_mark.line == line_no else ""
            if isinstance(value_node, yaml.ScalarNode) and value_node.value == "" and not value_node.style:
                rest = line[key_node.end_mark.column:].lstrip()
                rest = rest[1:] if rest.startswith(":") else rest
        else:
            rest = line[key_node.end_mark.column:].lstrip()
            rest = rest[1:] if rest.startswith(":") else rest
        stripped = rest.strip()
        if stripped.startswith("#"):
            # Its column is worth keeping unless the value was a flow collection on this line
            # (which a rewrite spreads over lines, leaving the column far from the key).
            flow_here = (
                isinstance(value_node, (yaml.MappingNode, yaml.SequenceNode))
                and value_node.flow_style
                and value_node.start_mark.line == line_no
            )
            return stripped, None if flow_here else len(line) - len(rest.lstrip())
        return None, None

    def noncanonical_bools(self, node, path=()):
        """Paths (tuples of keys and indexes) of booleans written otherwise than
        true/false under `node`."""
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _BOOL_TAG and node.value not in _CANONICAL_BOOLS:
                yield path, node.value
        elif isinstance(node, yaml.SequenceNode):
            for i, n in enumerate(node.value):
                yield from self.noncanonical_bools(n, path + (i,))
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                yield from self.noncanonical_bools(v, path + (k.value if isinstance(k, yaml.ScalarNode) else "?",))

    def canonical(self, node):
        """False if the subtree holds booleans written otherwise than true/false (Python's
        True, yes, on ...), which a verbatim copy would keep."""
        if isinstance(node, yaml.ScalarNode):
            return not (node.tag == _BOOL_TAG and node.value not in _CANONICAL_BOOLS)
        if isinstance(node, yaml.SequenceNode):
            return all(self.canonical(n) for n in node.value)
        if isinstance(node, yaml.MappingNode):
            return all(self.canonical(k) and self.canonical(v) for k, v in node.value)
        return True

    def entries(self, mapping_node):
        """For a block mapping: a list of (key, key node, value node, first line, last
        content line, gap) where gap is the lines after the entry's content and before
        the next entry (blank lines and comments), kept as they are."""
        out = []
        pairs = mapping_node.value
        for i, (k, v) in enumerate(pairs):
            first = k.start_mark.line
            last = max(self.content_end(k), self.content_end(v))
            if i + 1 < len(pairs):
                nxt = pairs[i + 1][0].start_mark.line
                gap = list(range(last + 1, nxt))
            else:
                gap = []
            out.append((k.value if isinstance(k, yaml.ScalarNode) else None, k, v, first, last, gap))
        return out


def detect_json_indent(text):
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped and len(stripped) != len(line):
            return len(line) - len(stripped)
        if line.startswith("\t"):
            return "\t"
    return 2


_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


def sub_variables(text):
    """The ${...} names of a Fn::Sub string, without the literal ${!...} ones."""
    names = []
    for m in _SUB_VAR.finditer(text):
        inner = m.group(1).strip()
        if inner.startswith("!"):
            continue
        names.append(inner)
    return names
