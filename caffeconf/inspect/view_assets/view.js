// The HTML view's script: builds DOT text for the modules open now, lays it out with the vendored
// Graphviz (Viz, WebAssembly) and wires pan, zoom, search and the details panel. The net arrives
// once as JSON (caffeconf/inspect/view.py); nothing is fetched.
"use strict";
(() => {
  const DATA = JSON.parse(document.getElementById("net-data").textContent);
  const layers = DATA.layers, uses = DATA.uses;
  const maxDepth = uses.reduce((deepest, use) => Math.max(deepest, use.depth), 0);
  const layersUnder = uses.map(() => []);
  layers.forEach((layer, index) => layer.uses.forEach((use) => layersUnder[use].push(index)));
  const writersOf = new Map();
  layers.forEach((layer, index) => layer.tops.forEach(([blob]) => {
    if (!writersOf.has(blob)) writersOf.set(blob, []);
    writersOf.get(blob).push(index);
  }));
  const CLUSTER_FILLS = ["#fbfbf4", "#f1f5fb", "#f6f1fa", "#f1faf3"];

  const canvas = document.getElementById("canvas"), stage = document.getElementById("stage");
  const statusLine = document.getElementById("status"), details = document.getElementById("details");
  const openUses = new Set();
  const view = {x: 0, y: 0, scale: 1};
  let viz = null, selected = null, lastLayoutMs = 0;

  // ------------------------------------------------------------ DOT for the current state

  function nodeOf(index) {
    for (const use of layers[index].uses) if (!openUses.has(use)) return "m" + use;
    return "l" + index;
  }

  function quote(text) {
    return '"' + String(text).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") + '"';
  }

  function attrs(values) {
    return "[" + Object.entries(values).map(([key, value]) => key + "=" + quote(value)).join(", ") + "]";
  }

  function layerNode(index) {
    const layer = layers[index];
    const fill = layer.inPlace ? DATA.colors.inPlace : (DATA.colors.types[layer.type] || DATA.colors.other);
    return quote("l" + index) + " " + attrs({label: layer.label, shape: "box", style: "filled,rounded",
      fillcolor: fill, id: "l" + index, class: "layer", tooltip: layer.span || layer.name}) + ";";
  }

  function moduleNode(use) {
    const u = uses[use], count = layersUnder[use].length;
    return quote("m" + use) + " " + attrs({label: `${u.instance}\n(${u.module})\n${count} layer${count === 1 ? "" : "s"}`,
      shape: "box3d", style: "filled", fillcolor: DATA.colors.module, id: "m" + use, class: "module closed",
      tooltip: `${u.path} (${u.module}) at ${u.span}`}) + ";";
  }

  function topShape(index, blob) {
    const top = layers[index].tops.find(([name]) => name === blob);
    return top ? top[1] : "";
  }

  function clusterTree() {
    const groups = new Map();
    const group = (key) => {
      if (!groups.has(key)) groups.set(key, {nodes: [], children: new Set()});
      return groups.get(key);
    };
    const placed = new Set();
    layers.forEach((layer, index) => {
      const node = nodeOf(index);
      if (placed.has(node)) return;
      placed.add(node);
      const closed = node[0] === "m";
      const parent = closed ? uses[+node.slice(1)].parent : (layer.uses.length ? layer.uses[layer.uses.length - 1] : null);
      group(parent === null ? "root" : parent).nodes.push(closed ? moduleNode(+node.slice(1)) : layerNode(index));
      for (let use = parent; use !== null; use = uses[use].parent) {
        group(uses[use].parent === null ? "root" : uses[use].parent).children.add(use);
      }
    });
    return groups;
  }

  function clusterLines(groups, key, indent, out) {
    const entry = groups.get(key) || {nodes: [], children: new Set()};
    for (const line of entry.nodes) out.push(indent + line);
    for (const use of entry.children) {
      const u = uses[use];
      out.push(`${indent}subgraph ${quote("cluster_" + use)} {`);
      out.push(`${indent}  graph ` + attrs({label: `${u.instance} (${u.module})`, id: "c" + use, class: "module open",
        style: "rounded,filled", fillcolor: CLUSTER_FILLS[(u.depth - 1) % CLUSTER_FILLS.length], color: "#777777",
        tooltip: `${u.path}: click to close`}) + ";");
      clusterLines(groups, use, indent + "  ", out);
      out.push(`${indent}}`);
    }
  }

  function edgeLines() {
    const out = [], seen = new Set();
    for (const [source, target, blob] of DATA.edges) {
      const tail = nodeOf(source), head = nodeOf(target), key = tail + ">" + head + ">" + blob;
      if (tail === head || seen.has(key)) continue;
      seen.add(key);
      out.push(`${quote(tail)} -> ${quote(head)} ` + attrs({label: topShape(source, blob), tooltip: blob}) + ";");
    }
    DATA.outputs.forEach(([blob, writer], k) => {
      out.push(`${quote("o" + k)} ` + attrs({label: blob, shape: "oval", id: "o" + k, class: "output"}) + ";");
      out.push(`${quote(nodeOf(writer))} -> ${quote("o" + k)} ` + attrs({label: topShape(writer, blob)}) + ";");
    });
    const pairs = new Map();
    for (const [owner, user, name] of DATA.shared) {
      const tail = nodeOf(owner), head = nodeOf(user), key = tail + ">" + head;
      if (tail === head) continue;
      if (!pairs.has(key)) pairs.set(key, {tail, head, names: []});
      if (!pairs.get(key).names.includes(name)) pairs.get(key).names.push(name);
    }
    for (const {tail, head, names} of pairs.values()) {
      out.push(`${quote(tail)} -> ${quote(head)} ` + attrs({label: "shares " + names.join(", "), style: "dashed",
        dir: "none", color: "#8a2be2", fontcolor: "#8a2be2", constraint: "false"}) + ";");
    }
    return out;
  }

  function dotText() {
    const out = [`digraph ${quote(DATA.name)} {`,
      `  graph [rankdir=${DATA.rankdir}, fontname="Helvetica", nodesep=0.3, ranksep=0.4];`,
      '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];'];
    clusterLines(clusterTree(), "root", "  ", out);
    return out.concat(edgeLines().map((line) => "  " + line), ["}"]).join("\n");
  }

  // ------------------------------------------------------------ layout, pan and zoom

  function applyView() {
    stage.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
  }

  function svgSize() {
    const svg = stage.querySelector("svg");
    return svg ? {width: svg.viewBox.baseVal.width, height: svg.viewBox.baseVal.height} : {width: 1, height: 1};
  }

  function fit() {
    const {width, height} = svgSize(), box = canvas.getBoundingClientRect();
    view.scale = Math.min((box.width - 20) / width, (box.height - 20) / height, 1.5);
    view.x = (box.width - width * view.scale) / 2;
    view.y = Math.max(10, (box.height - height * view.scale) / 2);
    applyView();
  }

  function centre(element) {
    const box = canvas.getBoundingClientRect(), rect = element.getBoundingClientRect();
    view.x += box.left + box.width / 2 - (rect.left + rect.width / 2);
    view.y += box.top + box.height / 2 - (rect.top + rect.height / 2);
    applyView();
  }

  function layout(anchor, keepView) {
    // anchor: [id before, id after] keeps what was clicked where it was on the screen; without one the
    // drawing is fitted to the window unless keepView.
    const before = anchor && document.getElementById(anchor[0]);
    const was = before && before.getBoundingClientRect();
    const started = performance.now();
    const svg = viz.renderSVGElement(dotText());
    svg.setAttribute("width", svg.viewBox.baseVal.width);
    svg.setAttribute("height", svg.viewBox.baseVal.height);
    stage.replaceChildren(svg);
    lastLayoutMs = performance.now() - started;
    const after = anchor && document.getElementById(anchor[1]);
    if (was && after) {
      const now = after.getBoundingClientRect();
      view.x += was.left + was.width / 2 - (now.left + now.width / 2);
      view.y += was.top - now.top;
      applyView();
    } else if (!keepView) {
      fit();
    }
    markSelected();
    const shown = stage.querySelectorAll("g.node").length;
    statusLine.textContent = `${layers.length} layers, ${uses.length} module uses; ${shown} nodes shown, ` +
      `laid out in ${Math.round(lastLayoutMs)} ms`;
  }

  let drag = null, dragged = false;
  canvas.addEventListener("pointerdown", (event) => {
    drag = {x: event.clientX, y: event.clientY, vx: view.x, vy: view.y};
    dragged = false;
  });
  window.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (!dragged && Math.hypot(dx, dy) < 4) return;
    dragged = true;
    canvas.classList.add("dragging");
    view.x = drag.vx + dx;
    view.y = drag.vy + dy;
    applyView();
  });
  window.addEventListener("pointerup", () => { drag = null; canvas.classList.remove("dragging"); });
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = canvas.getBoundingClientRect();
    const px = event.clientX - box.left, py = event.clientY - box.top;
    const factor = Math.min(4, Math.max(0.25, Math.exp(-event.deltaY * 0.0015)));
    view.x = px - (px - view.x) * factor;
    view.y = py - (py - view.y) * factor;
    view.scale *= factor;
    applyView();
  }, {passive: false});

  // ------------------------------------------------------------ opening and closing

  function openUse(use) {
    if (openUses.has(use)) return;
    openUses.add(use);
    layout(["m" + use, "c" + use]);
  }

  function closeUse(use) {
    if (!openUses.has(use)) return;
    openUses.delete(use);
    for (const inner of uses.keys()) if (isInside(inner, use)) openUses.delete(inner);
    layout(["c" + use, "m" + use]);
  }

  function isInside(inner, outer) {
    for (let use = uses[inner].parent; use !== null; use = uses[use].parent) if (use === outer) return true;
    return false;
  }

  function setDepth(depth) {
    openUses.clear();
    uses.forEach((use, index) => { if (use.depth < depth) openUses.add(index); });
    document.getElementById("depth").value = String(depth);
    layout(null);
  }

  function expandAll() {
    uses.forEach((_, index) => openUses.add(index));
    layout(null);
  }

  stage.addEventListener("click", (event) => {
    if (dragged) return;
    const group = event.target.closest("g.node, g.cluster");
    if (!group) return;
    const kind = group.id[0], index = +group.id.slice(1);
    if (kind === "l") select({kind: "layer", index});
    if (kind === "m") { selected = {kind: "module", index}; openUse(index); showDetails(); }
    if (kind === "c") { selected = {kind: "module", index}; closeUse(index); showDetails(); }
    if (kind === "o") select({kind: "layer", index: DATA.outputs[index][1]});
  });

  // ------------------------------------------------------------ details

  function escapeHtml(text) {
    return String(text).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
  }

  function number(value) {
    return value === null || value === undefined ? "unknown" : value.toLocaleString("en-US");
  }

  function row(name, value) {
    return `<tr><td>${escapeHtml(name)}</td><td>${value}</td></tr>`;
  }

  function chainHtml(useIds) {
    if (!useIds.length) return "none (written at the top level)";
    return useIds.map((use) => `<a data-use="${use}">${escapeHtml(uses[use].instance)}</a> ` +
      `(${escapeHtml(uses[use].module)}) at ${escapeHtml(uses[use].span)}`).join("<br>");
  }

  function blobsHtml(blobs) {
    return blobs.map(([name, shape]) => `${escapeHtml(name)} <span class="hint">${escapeHtml(shape)}</span>`)
      .join("<br>") || "none";
  }

  function sum(values) {
    return values.some((v) => v === null) ? null : values.reduce((a, b) => a + b, 0);
  }

  function ancestors(use) {
    const chain = [];
    for (let u = use; u !== null; u = uses[u].parent) chain.unshift(u);
    return chain;
  }

  function showDetails() {
    if (!selected) return;
    if (selected.kind === "layer") {
      const layer = layers[selected.index];
      details.innerHTML = `<h2>${escapeHtml(layer.name)}</h2><table>` + row("type", escapeHtml(layer.type)) +
        row("bottoms", blobsHtml(layer.bottoms)) + row("tops", blobsHtml(layer.tops)) +
        row("parameters", number(layer.params)) + row("MACs", number(layer.macs)) +
        row("written at", escapeHtml(layer.span || "unknown")) + row("module uses", chainHtml(layer.uses)) +
        `</table><h3>Caffe fields</h3><pre>${escapeHtml(JSON.stringify(layer.fields, null, 2))}</pre>`;
    } else {
      const use = uses[selected.index], members = layersUnder[selected.index];
      details.innerHTML = `<h2>${escapeHtml(use.instance)}</h2><table>` + row("module", escapeHtml(use.module)) +
        row("path", escapeHtml(use.path)) + row("used at", escapeHtml(use.span)) +
        row("layers", String(members.length)) +
        row("parameters", number(sum(members.map((i) => layers[i].params)))) +
        row("MACs", number(sum(members.map((i) => layers[i].macs)))) +
        row("module uses", chainHtml(ancestors(selected.index))) +
        row("state", openUses.has(selected.index) ? "open" : "closed") + "</table>";
    }
  }

  details.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-use]");
    if (link) reveal({kind: "module", index: +link.dataset.use});
  });

  function elementFor(target) {
    if (target.kind === "layer") return document.getElementById(nodeOf(target.index));
    return document.getElementById((openUses.has(target.index) ? "c" : "m") + target.index);
  }

  function markSelected() {
    for (const old of stage.querySelectorAll(".selected")) old.classList.remove("selected");
    const element = selected && elementFor(selected);
    if (element) element.classList.add("selected");
  }

  function select(target) {
    selected = target;
    markSelected();
    showDetails();
  }

  // ------------------------------------------------------------ search

  const names = [];
  layers.forEach((layer, index) => names.push({name: layer.name, target: {kind: "layer", index}}));
  for (const [blob, writers] of writersOf) {
    if (!layers[writers[0]] || layers[writers[0]].name !== blob) {
      names.push({name: blob, target: {kind: "layer", index: writers[0]}, blob: true});
    }
  }
  uses.forEach((use, index) => names.push({name: use.path, target: {kind: "module", index}}));
  document.getElementById("names").replaceChildren(...names.map(({name}) => new Option(name)));

  function reveal(target) {
    const chain = target.kind === "layer" ? layers[target.index].uses : ancestors(target.index).slice(0, -1);
    const closed = chain.filter((use) => !openUses.has(use));
    closed.forEach((use) => openUses.add(use));
    selected = target;
    if (closed.length) layout(null, true); else markSelected();
    const element = elementFor(target);
    for (const old of stage.querySelectorAll(".hit")) old.classList.remove("hit");
    if (element) {
      element.classList.add("hit");
      if (view.scale < 0.6) { view.scale = 1; applyView(); }
      centre(element);
    }
    showDetails();
    return element;
  }

  let lastQuery = "", hits = [], hitIndex = 0;
  function search(query) {
    const wanted = query.trim().toLowerCase();
    if (!wanted) return null;
    if (wanted !== lastQuery) {
      const exact = names.filter(({name}) => name.toLowerCase() === wanted);
      hits = exact.concat(names.filter(({name}) => name.toLowerCase() !== wanted && name.toLowerCase().includes(wanted)));
      lastQuery = wanted;
      hitIndex = 0;
    } else {
      hitIndex = (hitIndex + 1) % Math.max(hits.length, 1);
    }
    if (!hits.length) { statusLine.textContent = `nothing is named like “${query}”`; return null; }
    const element = reveal(hits[hitIndex].target);
    statusLine.textContent = `match ${hitIndex + 1} of ${hits.length}: ${hits[hitIndex].name}`;
    return element;
  }

  const searchBox = document.getElementById("search");
  searchBox.addEventListener("keydown", (event) => { if (event.key === "Enter") search(searchBox.value); });
  searchBox.addEventListener("change", () => search(searchBox.value));
  window.addEventListener("keydown", (event) => {
    if (event.target === searchBox) return;
    if (event.key === "/") { event.preventDefault(); searchBox.focus(); }
    if (event.key === "f") fit();
  });

  // ------------------------------------------------------------ controls and start

  const depthSelect = document.getElementById("depth");
  for (let depth = 1; depth <= maxDepth; depth++) depthSelect.append(new Option(String(depth)));
  depthSelect.addEventListener("change", () => setDepth(+depthSelect.value));
  document.getElementById("expand-all").addEventListener("click", expandAll);
  document.getElementById("fit").addEventListener("click", fit);
  if (!maxDepth) document.querySelector("header .modules").hidden = true;

  const started = new Promise((resolve, reject) => {
    Viz.instance().then((instance) => {
      viz = instance;
      const query = new URLSearchParams(window.location.search);
      if (query.get("expand") === "all") expandAll(); else setDepth(+(query.get("depth") || 1));
      document.body.dataset.readyMs = String(Math.round(performance.now()));  // read by benchmarks/view_open.py
      resolve(performance.now());
    }).catch((error) => {
      statusLine.textContent = "Graphviz could not start: " + error;
      reject(error);
    });
  });
  // For scripts and tests driving the page (tests/test_view.py).
  window.caffeconfView = {ready: started, openUse, closeUse, setDepth, expandAll, search, fit, dotText,
    useId: (path) => uses.findIndex((use) => use.path === path), get view() { return {...view}; },
    get lastLayoutMs() { return lastLayoutMs; }};
})();
