"""Reading a course export (OLX) into the tree the dashboards read.

Every element becomes `{"tag": ..., <each XML attribute as a string>, "children": [...]}`, in
document order. Text is not kept: an `html` leaf holds its attributes only (`filename`,
`display_name`, ...), never the HTML body, and a `problem` holds its inner elements
(`multiplechoiceresponse`, `choice`, ...) with their attributes but not their text. Comments,
processing instructions and entity references are dropped. Namespaced attributes keep lxml's
`{uri}name` spelling. An attribute whose name is one of the tree's own keys (`tag`, `children`, and
on the root `policy`, `grading_policy`, `warnings`, `course_id`) is stored as `@<name>`.

A child element with a `url_name` and no child elements of its own is expanded from
`<tag>/<url_name>.xml` (a `:` in the url_name is a sub-folder, as edX writes it) when that file
exists: the file's attributes, then the referencing element's own attributes on top, and the file's
children. Only a pure pointer (its one attribute is `url_name`, edX's own test) whose file is
missing gives a warning; an element with more attributes is an inline block and is kept as it is.
A reference that would re-enter a file already being expanded (a loop) is warned about and kept
unexpanded. `start`, `end`, `due` (and the enrollment dates) written with literal quotes, as some
exports do (`"\\"2015-04-01T00:00:00Z\\""`), lose the quotes, with a warning.

The XML parser never resolves external entities, never loads a DTD or touches the network, and
keeps libxml2's limits on depth and entity amplification (no `huge_tree`): a billion-laughs
document fails (or, in element content, keeps its unexpanded reference, which the tree drops)
instead of eating memory. Malformed XML anywhere fails the course (TerminalError
naming the file inside the export); so does a tree larger than MAX_NODES elements.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from core.errors import TerminalError
from services.course_structure.archive import CourseSource, safe_relative

Node = dict[str, Any]

DATE_ATTRIBUTES = frozenset({"start", "end", "due", "enrollment_start", "enrollment_end"})
ROOT_KEYS = frozenset({"tag", "children", "policy", "grading_policy", "warnings", "course_id"})
NODE_KEYS = frozenset({"tag", "children"})
MAX_NODES = 300_000
MAX_DEPTH = 200
MAX_WARNINGS = 200


def make_parser() -> etree.XMLParser:
    """A parser that reads only what is in the bytes given to it."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


@dataclass
class Warnings:
    """The warnings of one course, capped so that a pathological export cannot flood the output."""

    items: list[str] = field(default_factory=list)
    dropped: int = 0

    def add(self, message: str) -> None:
        if len(self.items) < MAX_WARNINGS:
            self.items.append(message)
        else:
            self.dropped += 1

    def as_list(self) -> list[str]:
        tail = [f"... and {self.dropped} more warnings"] if self.dropped else []
        return self.items + tail


@dataclass(frozen=True)
class CourseRef:
    """What `course.xml` says: the course's run (its url_name), org and course number."""

    run: str
    org: str
    course: str
    attributes: dict[str, str]
    element: etree._Element  # course.xml's own element (a full course in old XML courses)


class OlxReader:
    """Parses the files of one export on demand (each once) and builds the tree."""

    def __init__(self, source: CourseSource, warnings: Warnings) -> None:
        self.source = source
        self.warnings = warnings
        self.parser = make_parser()
        self.cache: dict[str, etree._Element | None] = {}
        self.nodes = 0

    def parse(self, rel: str) -> etree._Element | None:
        """The root element of `rel`, or None if the export has no such file."""
        if rel in self.cache:
            return self.cache[rel]
        data = self.source.read(rel)
        root = None
        if data is not None:
            try:
                root = etree.fromstring(data, self.parser)
            except etree.XMLSyntaxError as exc:
                raise TerminalError(f"{self.source.label}: {rel}: malformed XML: {exc}") from exc
        self.cache[rel] = root
        return root

    def course_ref(self) -> CourseRef:
        root = self.parse("course.xml")
        if root is None:
            raise TerminalError(f"{self.source.label}: no course.xml")
        attributes = {str(k): str(v) for k, v in root.attrib.items()}
        missing = [a for a in ("url_name", "org", "course") if not attributes.get(a)]
        if root.tag != "course" or missing:
            raise TerminalError(
                f"{self.source.label}: course.xml must be <course url_name=... org=... course=...>"
                + (f" (missing {', '.join(missing)})" if missing else f" (found <{root.tag}>)")
            )
        return CourseRef(attributes["url_name"], attributes["org"], attributes["course"], attributes, root)

    def course_element(self, ref: CourseRef) -> tuple[etree._Element, str]:
        """course.xml itself if it holds the whole course (old XML courses), else `course/<run>.xml`,
        else `course/course.xml`."""
        if _element_children(ref.element):
            return ref.element, "course.xml"
        for rel in (_pointer_path("course", ref.run), "course/course.xml"):
            if rel is not None and (element := self.parse(rel)) is not None:
                return element, rel
        raise TerminalError(f"{self.source.label}: neither course/{ref.run}.xml nor course/course.xml exists")

    def json_file(self, candidates: list[str]) -> tuple[Any, str] | None:
        """The first of `candidates` that exists, parsed; a file that is not JSON fails the course."""
        for rel in candidates:
            if not safe_relative(rel):
                continue
            data = self.source.read(rel)
            if data is None:
                continue
            try:
                return json.loads(data), rel
            except (ValueError, UnicodeDecodeError) as exc:
                raise TerminalError(f"{self.source.label}: {rel}: not valid JSON: {exc}") from exc
        return None

    def build_root(
        self, element: etree._Element, rel: str, ref: CourseRef, each_chapter: Callable[[int, int], None]
    ) -> Node:
        """The course node; `each_chapter(done, total)` is called before each chapter is read."""
        node = self._node(element, rel, ROOT_KEYS)
        for name, value in ref.attributes.items():
            node.setdefault(_key(name, ROOT_KEYS), value)
        children = _element_children(element)
        chapters = sum(1 for child in children if child.tag == "chapter")
        stack = (("course", ref.run),)
        built = []
        done = 0
        for child in children:
            if child.tag == "chapter":
                each_chapter(done, chapters)
                done += 1
            built.append(self._child(child, rel, stack, 1))
        node["children"] = built
        return node

    def _node(self, element: etree._Element, rel: str, reserved: frozenset[str]) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise TerminalError(f"{self.source.label}: the course has more than {MAX_NODES} elements")
        node: Node = {"tag": _tag(element)}
        for name, value in element.attrib.items():
            node[_key(str(name), reserved)] = self._clean(str(name), str(value), element, rel)
        return node

    def _child(
        self, element: etree._Element, rel: str, stack: tuple[tuple[str, str], ...], depth: int
    ) -> Node:
        """One element, expanded from its own file if it is a reference, with its children."""
        if depth > MAX_DEPTH:
            self.warnings.add(f"{rel}: elements nested deeper than {MAX_DEPTH}; the rest is left out")
            return {"tag": _tag(element), "children": []}
        tag, url_name = _tag(element), element.get("url_name")
        source_element, source_rel = element, rel
        node_stack = stack
        if url_name and not _element_children(element):
            target = _pointer_path(tag, url_name)
            key = (tag, url_name)
            if target is None:
                self.warnings.add(f"{rel}: <{tag} url_name={url_name!r}>: not a safe file name; not expanded")
            elif key in stack:
                chain = " -> ".join(f"{t}/{u}.xml" for t, u in (*stack[1:], key))
                self.warnings.add(f"{rel}: reference loop {chain}; {target} is not expanded again")
            else:
                referenced = self.parse(target)
                if referenced is None:
                    if set(element.attrib.keys()) == {"url_name"}:
                        self.warnings.add(
                            f"{rel}: <{tag} url_name={url_name!r}>: {target} is missing; kept as it is"
                        )
                else:
                    if _tag(referenced) != tag:
                        self.warnings.add(
                            f"{target}: root element is <{_tag(referenced)}>, referenced as <{tag}>"
                        )
                    source_element, source_rel, node_stack = referenced, target, (*stack, key)
        node = self._node(source_element, source_rel, NODE_KEYS)
        if source_element is not element:
            for name, value in element.attrib.items():
                node[_key(str(name), NODE_KEYS)] = self._clean(str(name), str(value), element, rel)
        node["children"] = [
            self._child(child, source_rel, node_stack, depth + 1)
            for child in _element_children(source_element)
        ]
        return node

    def _clean(self, name: str, value: str, element: etree._Element, rel: str) -> str:
        """A date written with literal quotes loses them (with a warning); other values are kept."""
        if name in DATE_ATTRIBUTES and len(value) >= 2 and value[0] == value[-1] == '"':
            url_name = element.get("url_name")
            where = f"<{_tag(element)} url_name={url_name!r}>" if url_name else f"<{_tag(element)}>"
            self.warnings.add(f"{rel}: {where}: {name} {value} has literal quotes; stripped")
            return value[1:-1]
        return value


def clean_date(value: object) -> object:
    """A policy date without literal quotes (the same fix as for XML attributes)."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _element_children(element: etree._Element) -> list[etree._Element]:
    """Child elements only: entity references and other non-element nodes are skipped."""
    return [child for child in element if isinstance(child.tag, str)]


def _tag(element: etree._Element) -> str:
    return str(element.tag)


def _key(name: str, reserved: frozenset[str]) -> str:
    return f"@{name}" if name in reserved else name


def _pointer_path(tag: str, url_name: str) -> str | None:
    """`<tag>/<url_name>.xml` with edX's `:` -> `/`, or None if that would not be a safe path."""
    rel = f"{tag}/{url_name.replace(':', '/')}.xml"
    return rel if safe_relative(rel) else None
