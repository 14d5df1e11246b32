// app.js - the gateway's page: pick a pipeline from what GET /v1/info says the
// server can do, drop images, watch them go through as imgprocd tasks
// (POST /v1/tasks, progress on the /v1/events WebSocket), download the results.
"use strict";

const $ = (id) => document.getElementById(id);
const info = { ops: [], formats: [] };
const items = [];          // one per image: {file, li, id, state, blob, outName}
const byId = new Map();    // task id -> item
const early = new Map();   // task id -> its latest event, before its item knows its id
const UPLOADS = 4;         // images sent at once
let socket = null, polling = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function bytes(n) {
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

// A problem+json answer (or anything else) as one line for a person.
async function problemText(resp) {
  try {
    const p = await resp.json();
    return (p.title ? p.title + ": " : "") + (p.detail || resp.statusText);
  } catch (e) {
    return "HTTP " + resp.status + " " + resp.statusText;
  }
}

// ---- the pipeline, from /v1/info

function opByName(name) { return info.ops.find((o) => o.name === name); }

function addStep(name, arg) {
  const op = opByName(name);
  if (!op) return;
  const li = el("li", { "data-op": name });
  const label = el("span", { text: name });
  li.append(label);
  if (op.params.length) {
    const id = "arg-" + Math.random().toString(36).slice(2);
    const input = el("input", { id, type: "text", value: arg || "",
      placeholder: op.syntax.split(/\s+/)[0].replace(/^[^=\[]*=?\[?=?/, ""),
      "aria-label": name + " " + op.params.map((p) => p.name).join(", ") });
    input.addEventListener("input", updatePipeline);
    li.append(" = ", input);
  }
  const remove = el("button", { type: "button", class: "plain", text: "Remove",
    "aria-label": "Remove step " + name });
  remove.addEventListener("click", () => { li.remove(); updatePipeline(); });
  li.append(" ", remove);
  if (!op.params.length) { $("steps").append(li); updatePipeline(); return; }
  const ranges = op.params.map((p) => p.type === "enum" || p.type === "bool" ||
      p.type === "colour" ? p.name + ": " + p.doc : p.name + " " + p.min + "–" + p.max +
      " (" + p.doc + ")").join("; ");
  li.append(el("span", { class: "hint", text: op.syntax + (ranges ? " — " + ranges : "") }));
  $("steps").append(li);
  updatePipeline();
}

function pipeline() {
  return [...$("steps").children].map((li) => {
    const input = li.querySelector("input");
    const arg = input ? input.value.trim() : "";
    return arg ? li.dataset.op + "=" + arg : li.dataset.op;
  }).join(",");
}

function updatePipeline() {
  $("pipeline").textContent = pipeline() || "(none: add a step)";
  updateButtons();
}

async function loadInfo() {
  try {
    const r = await fetch("/v1/info");
    if (!r.ok) throw new Error(await problemText(r));
    const d = await r.json();
    info.ops = d.operations;
    info.formats = d.output_formats;
    $("server").textContent = "imgprocd " + d.server_version + ", libvips " + d.vips_version +
      ", images up to " + bytes(d.limits.max_request_bytes);
    for (const o of info.ops) $("add-op").append(el("option", { value: o.name, text: o.name }));
    for (const f of info.formats) $("format").append(el("option", { value: f, text: f }));
    addStep("grayscale");
  } catch (e) {
    $("server").textContent = "The server cannot be asked: " + e.message;
    showError("imgprocd is not answering; reload the page to try again.");
  }
}

// ---- the images

// A thumbnail of an image the browser cannot show (TIFF): the server makes
// a PNG of it.  Once only; when that fails too, the thumbnail says so.
function thumbnail(img, blob) {
  img.src = URL.createObjectURL(blob);
  img.onerror = async () => {
    img.onerror = () => { img.replaceWith(el("span", { class: "nopreview", text: "no preview" })); };
    try {
      const r = await fetch("/v1/process?steps=resize%3D320x320&format=png",
                            { method: "POST", body: blob });
      if (!r.ok) throw new Error();
      img.src = URL.createObjectURL(await r.blob());
    } catch (e) {
      img.onerror();
    }
  };
}

function addFiles(files) {
  for (const file of files) {
    if (file.size === 0 && !file.type) continue;       // a folder's own entry
    const li = el("li", { "data-state": "waiting" });
    const state = el("span", { class: "state", text: "waiting" });
    const bar = el("progress", { max: "100", value: "0", "aria-label": "progress of " +
      file.name });
    const before = el("img", { alt: "before: " + file.name });
    thumbnail(before, file);
    const after = el("img", { alt: "" });
    li.append(el("div", { class: "name", text: file.name }),
      el("div", { class: "thumbs" }, el("figure", {}, before, el("figcaption",
        { text: bytes(file.size) })), el("figure", { class: "after" }, after,
        el("figcaption", { text: "" }))), bar, state);
    $("list").append(li);
    items.push({ file, li, state: "waiting", id: 0, blob: null });
  }
  updateButtons();
}

function setState(it, state, text, percent) {
  it.state = state;
  it.li.dataset.state = state;
  if (!(it.li.dataset.seen || "").split(" ").includes(state))    // the states it went through
    it.li.dataset.seen = ((it.li.dataset.seen || "") + " " + state).trim();
  it.li.classList.toggle("failed", state === "failed" || state === "cancelled");
  it.li.querySelector(".state").textContent = text;
  if (percent !== undefined) it.li.querySelector("progress").value = percent;
  updateButtons();
}

// Images that may be sent (again): not sent yet, or failed.
function sendable(i) { return i.state === "waiting" || i.state === "failed"; }

function updateButtons() {
  const waiting = items.filter(sendable).length;
  const done = items.filter((i) => i.state === "done").length;
  $("run").disabled = !waiting || !pipeline();
  $("all").disabled = !done;
  $("summary").textContent = items.length ? done + " of " + items.length + " done" : "";
}

// Folders dropped: every file under them.
async function entryFiles(entry) {
  if (entry.isFile) return [await new Promise((ok, no) => entry.file(ok, no))];
  const reader = entry.createReader(), out = [];
  for (;;) {
    const batch = await new Promise((ok, no) => reader.readEntries(ok, no));
    if (!batch.length) return out;
    for (const e of batch) out.push(...await entryFiles(e));
  }
}

// One image up as a task: XHR, for the upload's progress.
function upload(it) {
  return new Promise((resolve) => {
    const q = new URLSearchParams({ steps: pipeline() });
    if ($("format").value) q.set("format", $("format").value);
    if ($("quality").value) q.set("quality", $("quality").value);
    const form = new FormData();
    form.append("image", it.file, it.file.name);
    const x = new XMLHttpRequest();
    x.open("POST", "/v1/tasks?" + q);
    x.responseType = "json";
    x.upload.onprogress = (e) => {
      if (e.lengthComputable)
        setState(it, "uploading", "uploading " + Math.round(100 * e.loaded / e.total) + "%",
                 Math.round(30 * e.loaded / e.total));
    };
    x.onload = () => {
      const r = x.response || {};
      const t = r.tasks && r.tasks[0];
      if (x.status === 201 && t && t.ok) {
        it.id = t.id;
        byId.set(t.id, it);
        setState(it, t.state, t.state, 30);
        if (early.has(t.id)) taskEvent(early.get(t.id));
        watch();
      } else {
        setState(it, "failed", (r.title || "failed") + ": " + (r.detail || (t && t.error) ||
          "HTTP " + x.status), 0);
        // The pipeline itself is wrong: every image would fail the same way.
        if (x.status === 400 && /^steps/.test(r.detail || "")) badPipeline = r.detail;
      }
      resolve();
    };
    x.onerror = () => { setState(it, "failed", "the gateway cannot be reached", 0); resolve(); };
    setState(it, "uploading", "uploading", 0);
    x.send(form);
  });
}

let badPipeline = null;

async function run() {
  showError("");
  badPipeline = null;
  const queue = items.filter(sendable);
  for (const it of queue.filter((i) => i.state === "failed")) setState(it, "waiting", "waiting", 0);
  const next = async () => {
    while (queue.length && !badPipeline) await upload(queue.shift());
  };
  await Promise.all(Array.from({ length: UPLOADS }, next));
  if (badPipeline) {
    // Nothing more is sent: fix the steps, then Process sends them again.
    showError("The pipeline is not one the server takes: " + badPipeline);
    for (const it of items.filter((i) => i.state === "failed")) setState(it, "waiting", "waiting", 0);
  }
}

// ---- the tasks' progress: the WebSocket's task events, or polling without it

function taskEvent(t) {
  const it = byId.get(t.id);
  if (!it) { early.set(t.id, t); return; }
  if (it.state === "done" || it.state === "fetching") return;
  if (t.state === "done") { finish(it, t); return; }
  if (t.state === "failed" || t.state === "cancelled") {
    setState(it, t.state, t.state + (t.error ? ": " + t.error : ""), 0);
    return;
  }
  setState(it, t.state, t.state + (t.state === "running" ? " " + t.progress + "%" : ""),
           30 + Math.round(0.7 * t.progress));
}

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") +
                           location.host + "/v1/events");
  ws.onmessage = (m) => {
    if (typeof m.data !== "string") return;
    const e = JSON.parse(m.data);
    if (e.type === "task") taskEvent(e.task);
  };
  ws.onopen = () => { socket = ws; };
  ws.onclose = () => { socket = null; watch(); setTimeout(connect, 2000); };
}

// Without the socket, the list says where the tasks are, once a second.
function watch() {
  if (socket || polling) return;
  polling = setInterval(async () => {
    const open = items.filter((i) => i.id && !["done", "fetching", "failed",
                                               "cancelled"].includes(i.state));
    if (socket || !open.length) { clearInterval(polling); polling = null; return; }
    try {
      const r = await fetch("/v1/tasks");
      if (r.ok) for (const t of (await r.json()).tasks) taskEvent(t);
    } catch (e) { /* the gateway is away: try again */ }
  }, 1000);
}

const EXT = { "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp",
              "image/tiff": "tif", "image/gif": "gif" };

async function finish(it, t) {
  setState(it, "fetching", "fetching the result", 100);
  try {
    const r = await fetch("/v1/tasks/" + it.id + "/result");
    if (!r.ok) throw new Error(await problemText(r));
    it.blob = await r.blob();
    const ext = EXT[it.blob.type] || "bin";
    it.outName = it.file.name.replace(/\.[^.]*$/, "") + "-out." + ext;
    const fig = it.li.querySelector(".after");
    const img = fig.querySelector("img");
    thumbnail(img, it.blob);
    img.alt = "after: " + it.outName;
    const w = r.headers.get("X-Image-Width"), h = r.headers.get("X-Image-Height");
    it.li.dataset.width = w;
    it.li.dataset.height = h;
    it.li.dataset.bytes = it.blob.size;
    fig.querySelector("figcaption").textContent = w + "×" + h + ", " + bytes(it.blob.size) +
      ", " + ((t.finished - t.created) / 1000).toFixed(2) + " s";
    const a = el("a", { href: URL.createObjectURL(it.blob), download: it.outName,
                        text: "Download " + it.outName });
    it.li.append(" ", a);
    setState(it, "done", "done", 100);
  } catch (e) {
    setState(it, "failed", "the result cannot be fetched: " + e.message, 0);
  }
}

// ---- every result in one .zip (stored, not compressed: images are already)

const CRC = new Uint32Array(256).map((_, n) => {
  for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
  return n >>> 0;
});
function crc32(b) {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

async function zip(files) {
  const parts = [], dir = [], enc = new TextEncoder();
  let offset = 0;
  for (const f of files) {
    const data = new Uint8Array(await f.blob.arrayBuffer()), name = enc.encode(f.name);
    const crc = crc32(data);
    const head = (sig, extra) => {
      const h = new DataView(new ArrayBuffer(extra));
      h.setUint32(0, sig, true);
      return h;
    };
    const local = head(0x04034b50, 30);
    local.setUint16(4, 20, true); local.setUint16(8, 0, true);
    local.setUint32(14, crc, true); local.setUint32(18, data.length, true);
    local.setUint32(22, data.length, true); local.setUint16(26, name.length, true);
    const central = head(0x02014b50, 46);
    central.setUint16(4, 20, true); central.setUint16(6, 20, true);
    central.setUint32(16, crc, true); central.setUint32(20, data.length, true);
    central.setUint32(24, data.length, true); central.setUint16(28, name.length, true);
    central.setUint32(42, offset, true);
    parts.push(local, name, data);
    dir.push(central, name);
    offset += 30 + name.length + data.length;
  }
  const size = dir.reduce((n, p) => n + p.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, files.length, true); end.setUint16(10, files.length, true);
  end.setUint32(12, size, true); end.setUint32(16, offset, true);
  return new Blob([...parts, ...dir, end], { type: "application/zip" });
}

// Names unique within the zip: a.jpg and a.png both give a-out.jpg; the second is a-out-2.jpg.
function uniqueNames(names) {
  const used = new Set();
  return names.map((n) => {
    let name = n;
    for (let k = 2; used.has(name); k++) name = n.replace(/(\.[^.]*)?$/, "-" + k + "$1");
    used.add(name);
    return name;
  });
}

async function downloadAll() {
  const done = items.filter((i) => i.state === "done");
  const names = uniqueNames(done.map((i) => i.outName));
  const a = el("a", { href: URL.createObjectURL(await zip(done.map((i, k) =>
    ({ name: names[k], blob: i.blob })))), download: "imgproc-results.zip" });
  document.body.append(a);
  a.click();
  a.remove();
}

// ---- wiring

function init() {
  $("add").addEventListener("click", () => addStep($("add-op").value));
  $("files").addEventListener("change", (e) => { addFiles(e.target.files); e.target.value = ""; });
  $("folder").addEventListener("change", (e) => {
    addFiles([...e.target.files].filter((f) => f.type.startsWith("image/")));
    e.target.value = "";
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const entries = [...e.dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry());
    if (entries.length && entries.every((x) => x)) {
      const files = [];
      for (const x of entries) files.push(...await entryFiles(x));
      addFiles(files.filter((f) => f.type.startsWith("image/") || !f.type));
    } else {
      addFiles(e.dataTransfer.files);
    }
  });
  $("run").addEventListener("click", run);
  $("all").addEventListener("click", downloadAll);
  $("clear").addEventListener("click", () => {
    for (const it of items.filter((i) => ["done", "failed", "cancelled"].includes(i.state)))
      it.li.remove();
    items.splice(0, items.length, ...items.filter((i) => i.li.isConnected));
    updateButtons();
  });
  loadInfo();
  connect();
}

init();
