"""The lineage graph: the core walk (``store.graph``) and its SVG (``display.lineage_svg``).

The graph is checked against registries whose shape is known (a chain, a diamond, a cycle,
a fan), the picture by parsing it as XML: every node and edge is there once, text stays
text, the focus stands out, kinds have the colours the JupyterLab panel uses.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from llmops_magics.display.lineage_svg import KIND_COLOURS, LineageGraph, layout, lineage_graph, render_svg
from llmops_magics.errors import InvalidReferenceError, NotFoundError, ValidationError
from llmops_magics.store import KINDS
from llmops_magics.store.graph import MAX_DEPTH, graph

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def reg(workspace):
    return workspace.registry


def save(reg, kind, name, *parents, **kw):
    """One version whose content is unique to its name and parents."""
    body = f"{kind}:{name}:{[(p.ref, r) for p, r in parents]}".encode()
    return reg.save(kind, name, data=body, parents=list(parents), **kw).artifact


def refs_of(g):
    return [n["ref"] for n in g["nodes"]]


def edge_set(g):
    return {(e["src"], e["dst"], e["relation"]) for e in g["edges"]}


# ---------------------------------------------------------------- the walk


def test_the_graph_holds_every_ancestor_and_descendant_but_no_sibling(reg):
    data = save(reg, "dataset", "tickets")
    prompt = save(reg, "prompt", "qa")
    adapter = save(reg, "adapter", "lora", (data, "data"), (prompt, "prompt"))
    sibling = save(reg, "adapter", "other", (data, "data"))
    ev = save(reg, "eval", "ev", (adapter, "evaluated"))
    dep = save(reg, "deployment", "svc", (adapter, "serves"))
    report = save(reg, "monitor", "mon", (dep, "watches"))

    g = graph(reg, adapter.ref)

    levels = {n["ref"]: n["level"] for n in g["nodes"]}
    assert levels == {data.ref: -1, prompt.ref: -1, adapter.ref: 0, ev.ref: 1, dep.ref: 1, report.ref: 2}
    assert sibling.ref not in levels
    assert edge_set(g) == {
        (data.ref, adapter.ref, "data"),
        (prompt.ref, adapter.ref, "prompt"),
        (adapter.ref, ev.ref, "evaluated"),
        (adapter.ref, dep.ref, "serves"),
        (dep.ref, report.ref, "watches"),
    }
    assert g["focus"] == adapter.ref and g["truncated"] is False


def test_a_diamond_gives_each_version_once_and_every_edge(reg):
    a = save(reg, "dataset", "a")
    b = save(reg, "dataset", "b", (a, "derived"))
    c = save(reg, "dataset", "c", (a, "derived"))
    d = save(reg, "adapter", "d", (b, "data"), (c, "data"))

    down, up = graph(reg, a.ref), graph(reg, d.ref)

    assert sorted(refs_of(down)) == sorted(refs_of(up)) == sorted([a.ref, b.ref, c.ref, d.ref])
    assert len(edge_set(down)) == len(down["edges"]) == 4
    assert edge_set(down) == edge_set(up)
    assert {n["ref"]: n["level"] for n in up["nodes"]} == {d.ref: 0, b.ref: -1, c.ref: -1, a.ref: -2}


def test_an_edge_neither_walk_crossed_is_drawn_too(reg):
    data = save(reg, "dataset", "tickets")
    adapter = save(reg, "adapter", "lora", (data, "data"))
    ev = save(reg, "eval", "ev", (adapter, "evaluated"), (data, "data"))

    assert (data.ref, ev.ref, "data") in edge_set(graph(reg, adapter.ref))


def test_two_relations_between_one_pair_are_two_edges(reg):
    model = save(reg, "model", "m")
    adapter = save(reg, "adapter", "lora", (model, "base"), (model, "init"))

    assert edge_set(graph(reg, adapter.ref)) == {(model.ref, adapter.ref, "base"), (model.ref, adapter.ref, "init")}


def test_a_cycle_ends_the_walk_with_each_version_once(reg):
    a = save(reg, "dataset", "a")
    b = save(reg, "dataset", "b", (a, "derived"))
    c = save(reg, "dataset", "c", (b, "derived"))
    reg.add_edge(c, a, "feeds")  # stored lineage is acyclic; a hand-made edge must not hang the walk

    g = graph(reg, a.ref)

    assert sorted(refs_of(g)) == sorted([a.ref, b.ref, c.ref])
    assert edge_set(g) == {(a.ref, b.ref, "derived"), (b.ref, c.ref, "derived"), (c.ref, a.ref, "feeds")}
    assert {n["ref"]: n["level"] for n in g["nodes"]} == {a.ref: 0, c.ref: -1, b.ref: -2}  # first reached, kept
    assert "<svg" in LineageGraph(g).svg  # the layout breaks the cycle too


def test_depth_bounds_the_levels_each_way_and_says_the_picture_is_cut(reg):
    chain = [save(reg, "dataset", "d0")]
    for i in range(1, 7):
        chain.append(save(reg, "dataset", f"d{i}", (chain[-1], "derived")))
    middle = chain[3]

    two = graph(reg, middle.ref, depth=2)
    three = graph(reg, middle.ref, depth=3)

    assert sorted(refs_of(two)) == sorted(a.ref for a in chain[1:6])
    assert two["truncated"] is True and two["depth"] == 2
    assert sorted(refs_of(three)) == sorted(a.ref for a in chain)
    assert three["truncated"] is False
    assert graph(reg, middle.ref)["depth"] == MAX_DEPTH


def test_max_nodes_cuts_a_wide_graph_and_keeps_only_edges_between_kept_nodes(reg):
    base = save(reg, "model", "base")
    for i in range(10):
        save(reg, "adapter", f"a{i}", (base, "base"))

    g = graph(reg, base.ref, max_nodes=4)

    assert len(g["nodes"]) == 4 and g["truncated"] is True
    kept = set(refs_of(g))
    assert all(e["src"] in kept and e["dst"] in kept for e in g["edges"])
    assert len(g["edges"]) == 3


@pytest.mark.parametrize("depth", [0, MAX_DEPTH + 1, -1, "2", 1.5, True])
def test_a_depth_out_of_range_or_not_an_integer_is_refused(reg, depth):
    art = save(reg, "dataset", "a")
    with pytest.raises(ValidationError, match="depth"):
        graph(reg, art.ref, depth=depth)


def test_an_unknown_or_malformed_reference_is_the_registrys_error(reg):
    save(reg, "dataset", "a")
    with pytest.raises(NotFoundError):
        graph(reg, "dataset://nope/1")
    with pytest.raises(InvalidReferenceError):
        graph(reg, "dataset://bad name/1")


def test_nodes_carry_what_a_picture_shows_and_the_graph_is_json(workspace, reg):
    art = save(reg, "prompt", "qa", aliases=["production"])

    g = graph(workspace, "prompt://qa@production")  # a Workspace works as well as a Registry

    (node,) = g["nodes"]
    assert node == {
        "ref": art.ref,
        "kind": "prompt",
        "name": "qa",
        "version": 1,
        "aliases": ["latest", "production"],
        "created": art.created.isoformat(),
        "level": 0,
    }
    assert json.loads(json.dumps(g)) == g


# ---------------------------------------------------------------- the picture


HOSTILE = '<script>alert("x")</script>&amp;<img src=x onerror=alert(1)>'


def hostile_graph():
    """A graph as the renderer may get it from elsewhere: names the registry would never accept."""
    node = lambda ref, kind, name, aliases=(): {
        "ref": ref, "kind": kind, "name": name, "version": 1, "aliases": list(aliases),
        "created": "2026-01-01T00:00:00+00:00", "level": 0,
    }  # fmt: skip
    return {
        "focus": "adapter://x/1",
        "nodes": [
            node("adapter://x/1", "adapter", HOSTILE, ["production"]),
            node(f"dataset://{HOSTILE}/1", "dataset", "d\x07ata", [HOSTILE]),
            node("weird://w/1", "<kind>", "w"),
        ],
        "edges": [
            {"src": f"dataset://{HOSTILE}/1", "dst": "adapter://x/1", "relation": HOSTILE},
            {"src": "adapter://x/1", "dst": "weird://w/1", "relation": "made"},
        ],
    }


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything that is not well-formed XML


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == cls]


def test_every_text_is_escaped_so_no_markup_gets_in():
    root = parse(render_svg(hostile_graph()))

    tags = {el.tag.removeprefix(SVG) for el in root.iter()}
    assert tags <= {"svg", "title", "defs", "marker", "path", "rect", "g", "text"}
    assert not [a for el in root.iter() for a in el.attrib if a.lower().startswith("on")]
    assert {g.get("data-ref") for g in groups(root, "llmops-node")} == {n["ref"] for n in hostile_graph()["nodes"]}
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "<script>" in texts  # shown as the text it is, not dropped
    assert "\x07" not in render_svg(hostile_graph())  # XML 1.0 has no place for it


def test_every_node_and_edge_is_drawn_once(reg):
    a = save(reg, "dataset", "a")
    b = save(reg, "dataset", "b", (a, "derived"))
    c = save(reg, "dataset", "c", (a, "derived"))
    d = save(reg, "adapter", "d", (b, "data"), (c, "data"))
    e = save(reg, "eval", "e", (d, "evaluated"), (a, "data"))
    g = graph(reg, d.ref)

    root = parse(LineageGraph(g).svg)

    assert sorted(x.get("data-ref") for x in groups(root, "llmops-node")) == sorted(x.ref for x in (a, b, c, d, e))
    drawn = sorted((x.get("data-src"), x.get("data-dst")) for x in groups(root, "llmops-edge"))
    assert drawn == sorted((x["src"], x["dst"]) for x in g["edges"])


def test_aliases_are_badges_on_their_node_and_the_focus_stands_out():
    root = parse(render_svg(hostile_graph()))
    nodes = {g.get("data-ref"): g for g in groups(root, "llmops-node")}

    badges = lambda ref: [t.text for g in groups(nodes[ref], "llmops-alias") for t in g.iter(f"{SVG}text")]
    assert badges("adapter://x/1") == ["production"]
    assert badges("weird://w/1") == []
    assert [r for r, g in nodes.items() if g.get("data-focus") == "true"] == ["adapter://x/1"]
    width = {r: float(g.find(f"{SVG}rect").get("stroke-width")) for r, g in nodes.items()}
    assert width["adapter://x/1"] > max(w for r, w in width.items() if r != "adapter://x/1")


def test_a_long_alias_list_ends_in_a_count_of_the_rest():
    g = hostile_graph()
    g["nodes"][0]["aliases"] = [f"alias-{i}" for i in range(12)]
    root = parse(render_svg(g))
    (node,) = [x for x in groups(root, "llmops-node") if x.get("data-ref") == "adapter://x/1"]
    shown = len(groups(node, "llmops-alias"))
    assert 0 < shown < 12
    assert f"+{12 - shown}" in [t.text for t in node.iter(f"{SVG}text")]


def test_kinds_have_their_colours_and_an_unknown_kind_a_neutral_one():
    root = parse(render_svg(hostile_graph()))
    stroke = {g.get("data-kind"): g.find(f"{SVG}rect").get("stroke") for g in groups(root, "llmops-node")}
    assert stroke["adapter"] == KIND_COLOURS["adapter"]
    assert stroke["dataset"] == KIND_COLOURS["dataset"]
    assert stroke["<kind>"] not in KIND_COLOURS.values()


def test_every_kind_has_its_own_colour_the_same_as_in_the_jupyterlab_panel():
    assert set(KIND_COLOURS) == set(KINDS)
    assert len(set(KIND_COLOURS.values())) == len(KIND_COLOURS)
    source = (ROOT / "labextension" / "src" / "graphlayout.ts").read_text()
    block = re.search(r"KIND_COLOURS[^{]*\{(.*?)\}", source, re.S).group(1)
    ts = dict(re.findall(r"'?([a-z-]+)'?\s*:\s*'(#[0-9a-f]{6})'", block))
    assert ts == KIND_COLOURS


def test_the_layout_reads_left_to_right_without_overlapping_nodes(reg):
    base = save(reg, "model", "base")
    data = save(reg, "dataset", "data")
    adapters = [save(reg, "adapter", f"a{i}", (base, "base"), (data, "data")) for i in range(4)]
    for i, a in enumerate(adapters):
        save(reg, "eval", f"e{i}", (a, "evaluated"), (data, "data"))
    g = graph(reg, data.ref)

    placed = layout(g)

    xy = placed["nodes"]
    assert all(xy[e["src"]][0] < xy[e["dst"]][0] for e in g["edges"])
    boxes = sorted(xy.values())
    for i, (x1, y1) in enumerate(boxes):
        for x2, y2 in boxes[i + 1 :]:
            assert abs(x1 - x2) >= 200 or abs(y1 - y2) >= 62, (x1, y1, x2, y2)


def test_a_graph_with_an_edge_to_nowhere_is_refused():
    g = hostile_graph()
    g["edges"].append({"src": "adapter://x/1", "dst": "nowhere://n/1", "relation": "r"})
    with pytest.raises(ValidationError, match="two nodes"):
        LineageGraph(g)


def test_lineage_graph_displays_as_svg_and_text_and_saves(workspace, reg, tmp_path):
    data = save(reg, "dataset", "tickets")
    adapter = save(reg, "adapter", "lora", (data, "data"), aliases=["candidate"])

    view = lineage_graph("adapter://lora@candidate")

    bundle, meta = view._repr_mimebundle_()
    assert set(bundle) == {"image/svg+xml", "text/plain"}
    assert parse(bundle["image/svg+xml"]).tag == f"{SVG}svg"
    assert f"{data.ref} ─data→ {adapter.ref}" in bundle["text/plain"]
    assert meta == {"llmops": {"lineage_of": adapter.ref}}
    assert view.data == graph(workspace, adapter.ref)
    assert view.save(tmp_path / "g.svg").read_text() == bundle["image/svg+xml"]


def test_the_public_name_is_lazy_and_the_layout_library_loads_only_to_draw():
    code = (
        "import sys, llmops_magics\n"
        "before = 'grandalf' in sys.modules\n"
        "from llmops_magics import lineage_graph, Registry\n"
        "after_import = 'grandalf' in sys.modules\n"
        "print(before, after_import)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "False"]
