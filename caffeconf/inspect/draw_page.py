"""The HTML page around an inline SVG drawing: clicking a module's box expands
or collapses it. Self-contained (no network); `?expand=c1,c2` or `?expand=all`
expands modules on load, which is how the page is tested headless."""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{title}}</title>
<style>
  body { font-family: Helvetica, Arial, sans-serif; margin: 1em; }
  p.help { color: #555; font-size: 0.9em; }
  g.cluster { cursor: pointer; }
  g.cluster[data-state="collapsed"] > path,
  g.cluster[data-state="collapsed"] > polygon { fill: #e6e6fa; pointer-events: visible; }
  g.cluster[data-state="collapsed"] > text { font-weight: bold; }
  g.cluster[data-state="expanded"] > path,
  g.cluster[data-state="expanded"] > polygon { fill: none; pointer-events: visibleStroke; }
</style>
</head>
<body>
<h1>{{title}}</h1>
<p class="help">Click a module to expand it; click its outline or name to collapse it again.</p>
{{svg}}
<script>
"use strict";
const clusters = {{clusters}};
const collapsed = new Set(Object.keys(clusters));
const owner = {};
for (const [id, cluster] of Object.entries(clusters)) {
  for (const node of cluster.nodes) owner[node] = id;
}

function chain(id) {
  const out = [];
  for (let c = id; c; c = clusters[c].parent) out.unshift(c);
  return out;
}

function hiddenBy(id) {
  // The outermost collapsed cluster on the chain ending at `id`, or null.
  if (!id) return null;
  return chain(id).find((c) => collapsed.has(c)) || null;
}

function titleOf(g) {
  const title = g.querySelector("title");
  return title ? title.textContent : "";
}

function update() {
  for (const id of Object.keys(clusters)) {
    const g = document.getElementById(id);
    if (!g) continue;
    g.style.display = hiddenBy(clusters[id].parent) ? "none" : "";
    g.dataset.state = collapsed.has(id) ? "collapsed" : "expanded";
  }
  for (const g of document.querySelectorAll("g.node")) {
    g.style.display = hiddenBy(owner[titleOf(g)]) ? "none" : "";
  }
  for (const g of document.querySelectorAll("g.edge")) {
    const [tail, head] = titleOf(g).split("->");
    const a = hiddenBy(owner[tail]), b = hiddenBy(owner[head]);
    g.style.display = a && a === b ? "none" : "";
  }
}

function toggle(id) {
  if (collapsed.has(id)) collapsed.delete(id); else collapsed.add(id);
  update();
}

for (const id of Object.keys(clusters)) {
  const g = document.getElementById(id);
  if (!g) continue;
  g.addEventListener("click", (event) => { event.stopPropagation(); toggle(id); });
}
update();

const wanted = new URLSearchParams(window.location.search).get("expand");
if (wanted) {
  const ids = wanted === "all" ? Object.keys(clusters) : wanted.split(",");
  for (const id of ids) {
    const g = document.getElementById(id);
    if (g && collapsed.has(id)) g.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  }
}
</script>
</body>
</html>
"""
