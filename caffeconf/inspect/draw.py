"""Drawings of a net: flat Net + shapes -> Graphviz DOT text -> SVG/PNG (via `dot`); the HTML view is view.py.

Module uses become nested clusters (each layer's `origin.uses` chain), or,
at depth K, one node per module use on that level inside the clusters of the
levels above it; `flat` draws layers only. Edges run from the layer that last
wrote a blob to each reader and carry the blob's shape; layers that share a
named weight are joined by a dashed line.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

from ..errors import CaffeconfError
from ..ir import Layer, Net
from .shapes import NetShapes, Shape, format_shape, layer_param

FILL = {"Convolution": "#ff9f9f", "Deconvolution": "#ff9f9f", "Pooling": "#ffc870",
        "InnerProduct": "#dba0f0"}
IN_PLACE_FILL = "#b5eeb5"
OTHER_FILL = "#a8c4f0"
GROUP_FILL = "#f4f4dc"
RANKDIRS = ("TB", "LR", "BT", "RL")


@dataclass
class Cluster:
    key: tuple[str, ...]  # instance names from the outermost use
    label: str
    ident: str
    children: list["Cluster"] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Placement:
    """Where one layer is drawn: its node id, and the clusters around it (outermost first)."""

    node: str
    clusters: tuple[tuple[str, ...], ...]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(**values: str) -> str:
    return "[" + ", ".join(f"{k}={_quote(str(v))}" for k, v in values.items()) + "]"


class _Drawing:
    def __init__(self, net: Net, shapes: NetShapes | None, depth: int | None, flat: bool):
        self.net, self.depth, self.flat = net, depth, flat
        self.tops = {id(e.layer): e.tops for e in shapes.layers} if shapes else {}
        self.root = Cluster((), "", "root")
        self.clusters: dict[tuple[str, ...], Cluster] = {(): self.root}
        self.node_lines: dict[str, str] = {}
        self.placements = [self._place(index, layer) for index, layer in enumerate(net.layers)]

    # -- nodes and clusters
    def _place(self, index: int, layer: Layer) -> Placement:
        uses = () if self.flat or not layer.origin else layer.origin.uses
        chain = tuple(use.instance for use in uses)
        if self.depth is not None and len(chain) >= self.depth > 0:
            group = chain[:self.depth]
            node = "g_" + "/".join(group)
            self._add_cluster_chain(uses[:self.depth - 1])
            self._add_node(node, group[:-1], _attrs(
                label=f"{group[-1]}\n({uses[self.depth - 1].module})", shape="box3d",
                style="filled", fillcolor=GROUP_FILL, id=node, tooltip=layer.origin.uses[self.depth - 1].span))
            return Placement(node, self._prefixes(group[:-1]))
        self._add_cluster_chain(uses)
        node = f"l{index}"
        self._add_node(node, chain, _attrs(
            label=layer_label(layer), shape="box", style="filled,rounded", id=node,
            fillcolor=IN_PLACE_FILL if layer.is_in_place() else FILL.get(layer.type, OTHER_FILL),
            tooltip=str(layer.origin.span) if layer.origin else layer.name))
        return Placement(node, self._prefixes(chain))

    @staticmethod
    def _prefixes(chain: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
        return tuple(chain[:i] for i in range(1, len(chain) + 1))

    def _add_cluster_chain(self, uses) -> None:
        for i, use in enumerate(uses):
            key = tuple(u.instance for u in uses[:i + 1])
            if key not in self.clusters:
                cluster = Cluster(key, f"{use.instance} ({use.module})", f"c{len(self.clusters)}")
                self.clusters[key] = cluster
                self.clusters[key[:-1]].children.append(cluster)

    def _add_node(self, node: str, chain: tuple[str, ...], attrs: str) -> None:
        if node not in self.node_lines:
            self.node_lines[node] = f"{_quote(node)} {attrs};"
            self.clusters[chain].nodes.append(node)

    # -- edges
    def edges(self) -> list[str]:
        lines, seen = [], set()
        for source, target, blob in blob_edges(self.net):
            self._edge(source, target, blob, lines, seen)
        return lines + self._outputs() + self._shared_weights()

    def _shape(self, index: int, blob: str) -> Shape | None:
        layer = self.net.layers[index]
        tops = self.tops.get(id(layer))
        return tops[layer.tops.index(blob)] if tops else None

    def _edge(self, source: int, target: int, blob: str, lines: list[str], seen: set) -> None:
        tail, head = self.placements[source].node, self.placements[target].node
        if tail == head or (tail, head, blob) in seen:
            return
        seen.add((tail, head, blob))
        label = format_shape(self._shape(source, blob)) if self.tops else ""
        lines.append(f"{_quote(tail)} -> {_quote(head)} "
                     f"{_attrs(label=label, tooltip=blob, id=f'e{len(seen)}')};")

    def _outputs(self) -> list[str]:
        """Blobs nobody reads after their last write: drawn as ovals at the end."""
        lines = []
        for blob, index in net_outputs(self.net):
            node = f"out_{blob}"
            lines.append(f"{_quote(node)} {_attrs(label=blob, shape='oval', id=node)};")
            label = format_shape(self._shape(index, blob)) if self.tops else ""
            lines.append(f"{_quote(self.placements[index].node)} -> {_quote(node)} {_attrs(label=label)};")
        return lines

    def _shared_weights(self) -> list[str]:
        """A dashed line from a named weight's first user to each other user (one per pair of nodes)."""
        pairs: dict[tuple[str, str], list[str]] = {}
        for owner, user, name in shared_weights(self.net):
            tail, head = self.placements[owner].node, self.placements[user].node
            if tail != head:
                pairs.setdefault((tail, head), []).append(name)
        return [f"{_quote(tail)} -> {_quote(head)} " + _attrs(
                    label="shares " + ", ".join(names), style="dashed", dir="none", color="#8a2be2",
                    fontcolor="#8a2be2", constraint="false") + ";"
                for (tail, head), names in pairs.items()]

    # -- output
    def dot(self, rankdir: str) -> str:
        lines = [f"digraph {_quote(self.net.name or 'Net')} {{",
                 f"  graph [rankdir={rankdir}, fontname=\"Helvetica\", compound=true];",
                 "  node [fontname=\"Helvetica\", fontsize=10];",
                 "  edge [fontname=\"Helvetica\", fontsize=9];"]
        lines += self._cluster_body(self.root, "  ")
        lines += ["  " + line for line in self.edges()]
        return "\n".join(lines) + "\n}\n"

    def _cluster_body(self, cluster: Cluster, indent: str) -> list[str]:
        lines = [indent + self.node_lines[node] for node in cluster.nodes]
        for child in cluster.children:
            lines.append(f"{indent}subgraph {_quote('cluster_' + child.ident)} {{")
            lines.append(f"{indent}  graph {_attrs(label=child.label, id=child.ident, style='rounded', color='#777777')};")
            lines += self._cluster_body(child, indent + "  ")
            lines.append(f"{indent}}}")
        return lines


# ---------------------------------------------------------------- what connects layers (also for the view)

def blob_edges(net: Net) -> list[tuple[int, int, str]]:
    """(writer, reader, blob) for each bottom: the layer that last wrote the blob before the reader."""
    writers: dict[str, int] = {}
    edges = []
    for index, layer in enumerate(net.layers):
        edges += [(writers[bottom], index, bottom) for bottom in layer.bottoms if bottom in writers]
        writers.update((top, index) for top in layer.tops)
    return edges


def net_outputs(net: Net) -> list[tuple[str, int]]:
    """(blob, last writer) for blobs nobody reads after their last write."""
    writers: dict[str, int] = {}
    for index, layer in enumerate(net.layers):
        writers.update((top, index) for top in layer.tops)
    read_after = {b for i, layer in enumerate(net.layers) for b in layer.bottoms
                  if writers.get(b, -1) <= i and b not in layer.tops}
    return [(blob, index) for blob, index in writers.items() if blob not in read_after]


def shared_weights(net: Net) -> list[tuple[int, int, str]]:
    """(first owner, other user, weight name) for each named weight used again."""
    owners: dict[str, int] = {}
    pairs = []
    for index, layer in enumerate(net.layers):
        for name in (spec["name"] for spec in layer.params if spec.get("name")):
            owners.setdefault(name, index)
            if owners[name] != index:
                pairs.append((owners[name], index, name))
    return pairs


def layer_label(layer: Layer) -> str:
    lines = [layer.name, f"({layer.type})"]
    detail = _detail(layer)
    if detail:
        lines.append(detail)
    shared = [spec["name"] for spec in layer.params if spec.get("name")]
    if shared:
        lines.append("shares " + ", ".join(shared))
    return "\n".join(lines)


def _detail(layer: Layer) -> str:
    """One short line of the fields that matter most for the type."""
    if layer.type in ("Convolution", "Deconvolution"):
        param = layer.fields.get("convolution_param") or {}
        kernel = param.get("kernel_size") or [param.get("kernel_h"), param.get("kernel_w")]
        stride = (param.get("stride") or [param.get("stride_h", 1)])[0]
        return f"{param.get('num_output', '?')}, {'x'.join(map(str, kernel))} /{stride}"
    if layer.type == "Pooling":
        param = layer.fields.get("pooling_param") or {}
        if layer_param(layer, "pooling_param", "global_pooling"):
            return f"{layer_param(layer, 'pooling_param', 'pool')} global"
        kernel = param.get("kernel_size", f"{param.get('kernel_h')}x{param.get('kernel_w')}")
        return f"{layer_param(layer, 'pooling_param', 'pool')} {kernel} /{param.get('stride', 1)}"
    if layer.type == "InnerProduct":
        return str(layer_param(layer, "inner_product_param", "num_output"))
    return ""


def to_dot(net: Net, shapes: NetShapes | None = None, *, depth: int | None = None, flat: bool = False,
           rankdir: str = "TB") -> str:
    """The DOT text of the drawing (needs no Graphviz)."""
    return _Drawing(net, shapes, depth, flat).dot(rankdir)


# ---------------------------------------------------------------- rendering

DOT_TIMEOUT_S = 60.0  # a 5,000-way fan-in takes dot about 50 s


def render_with_dot(dot_text: str, fmt: str, timeout_s: float = DOT_TIMEOUT_S) -> bytes:
    """SVG or PNG bytes from Graphviz's `dot` program, which is killed past `timeout_s`."""
    program = shutil.which("dot")
    if program is None:
        raise CaffeconfError.at(None, f"drawing .{fmt} needs Graphviz's 'dot' program, which is not installed",
                                hint="install Graphviz (Debian/Ubuntu: apt-get install graphviz), "
                                     "or write .dot and render it elsewhere")
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode("utf-8"),
                              capture_output=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise CaffeconfError.at(None, f"Graphviz 'dot' did not lay out the net within {timeout_s:g} s: stopped",
                                hint="draw fewer boxes (--depth K), write .html or .dot, "
                                     "or allow more time (--dot-timeout SECONDS)") from None
    if done.returncode != 0:
        raise CaffeconfError.at(None, f"Graphviz 'dot' failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout
