// The writing pad: a document, the model's next words as ghost text after a pause, and what it wrote kept in the open.
//
// The editor is CodeMirror 6 (editor.js, bundled from assistant/pad/editor): its history makes undo and redo work
// across what the model wrote, its mark decorations follow the model's text through every edit, and it types without
// lag in a novel-length manuscript. Suggestions come from /pad/api/write as server-sent events; typing on aborts the
// request, which the server records as cancelled. Documents are saved to the server as you type (and to
// localStorage first, so a crash or a closed tab loses nothing).
import {
  EditorState, EditorView, StateField, StateEffect, Decoration, WidgetType, keymap, hoverTooltip, Prec,
  history as undoHistory, undo, redo, defaultKeymap, historyKeymap, invertedEffects, placeholder,
} from "./editor.js";

const $ = (id) => document.getElementById(id);
const CONTEXT_CHARS = 6000; // the text before the cursor sent with a request: more than any model here reads
const CONTEXT_STEP = 1000; // ...from a start that moves in steps of this many characters (see since)
const SAVE_MS = 400;
const DEFAULTS = { pause: 250, chars: 60, n: 3, long: 400, highlight: true };
const SAMPLING = [ // the chain's settings the panel shows: [name, label, step, min, max]
  ["temperature", "Temperature", 0.05, 0, 5], ["top_p", "Top-p", 0.01, 0, 1], ["top_k", "Top-k", 1, 0, 1000],
  ["min_p", "Min-p", 0.01, 0, 1], ["repetition_penalty", "Repetition penalty", 0.01, 0.01, 10],
  ["dry_multiplier", "DRY multiplier", 0.05, 0, 5], ["max_copy", "Longest copy of the corpus (chars)", 1, 1, 100000],
];

// ---- state: the ghost text and the model's marks -------------------------------------------------------------------
const setGhost = StateEffect.define();
const addWritten = StateEffect.define({ map: (v, m) => ({ ...v, from: m.mapPos(v.from), to: m.mapPos(v.to) }) });
const removeWritten = StateEffect.define({ map: (v, m) => ({ ...v, from: m.mapPos(v.from), to: m.mapPos(v.to) }) });

class GhostWidget extends WidgetType {
  constructor(text, cls, title) { super(); this.text = text; this.cls = cls; this.title = title; }
  eq(other) { return other.text === this.text && other.cls === this.cls; }
  toDOM() {
    const span = document.createElement("span");
    span.className = "ghost " + this.cls;
    span.textContent = this.text;
    if (this.title) span.title = this.title;
    return span;
  }
  ignoreEvent() { return false; }
}

// {pos, text, cls, title} or null; any change of the text or the cursor that is not an accept clears it
const ghostField = StateField.define({
  create: () => null,
  update(value, tr) {
    for (const e of tr.effects) if (e.is(setGhost)) return e.value;
    if (value && (tr.docChanged || tr.selection)) return null;
    return value;
  },
  provide: (f) => EditorView.decorations.from(f, (g) => g && g.text
    ? Decoration.set([Decoration.widget({ widget: new GhostWidget(g.text, g.cls, g.title), side: 1 }).range(g.pos)])
    : Decoration.none),
});

// The spans the model wrote: a mark per token (with its probability and alternatives, when known), in groups (one
// accepted suggestion or continuation), mapped through every edit; undo and redo take them away and back.
function mark(spec) { return Decoration.mark({ class: "w", inclusiveStart: false, inclusiveEnd: false, ...spec }); }
const writtenField = StateField.define({
  create: () => Decoration.none,
  update(marks, tr) {
    marks = marks.map(tr.changes);
    for (const e of tr.effects) {
      if (e.is(addWritten)) {
        marks = marks.update({ add: e.value.marks.map((m) => mark(m.spec).range(e.value.from + m.from, e.value.from + m.to)),
          sort: true });
      } else if (e.is(removeWritten)) {
        marks = marks.update({ filterFrom: e.value.from, filterTo: e.value.to,
          filter: (from, to) => to <= e.value.from || from >= e.value.to });
      }
    }
    return marks;
  },
  provide: (f) => EditorView.decorations.from(f),
});
const writtenUndo = invertedEffects.of((tr) => {
  const found = [];
  for (const e of tr.effects) {
    if (e.is(addWritten)) found.push(removeWritten.of({ from: e.value.from, to: e.value.to, marks: e.value.marks }));
    else if (e.is(removeWritten)) found.push(addWritten.of(e.value));
  }
  return found;
});

// ---- the page's state ----------------------------------------------------------------------------------------------
const pad = window.pad = {
  name: null, record: {}, settings: { ...DEFAULTS }, view: null,
  suggestion: null, // {pos, choices: [{text, done, sample_id, copied, tokens}], shown, accepted, controller}
  continuation: null, // the last longer continuation: {from, to, branches: [...], current}
  requests: 0, // requests sent (the tests and the benchmark read these)
  shownAt: 0, // performance.now() when ghost text last came on screen
};

function status(text, cls = "") { const s = $("status"); s.textContent = text; s.className = cls; }

// ---- talking to the server -----------------------------------------------------------------------------------------
// A server started with --api-key serves this page to anyone but answers its requests only with the key: the page
// asks its writer for it once (at the first 401), keeps it in this browser, and sends it with every request.
let keyAsked = null;

function headers() {
  const key = localStorage.getItem("pad.key");
  return { "Content-Type": "application/json", ...(key ? { Authorization: "Bearer " + key } : {}) };
}

function askKey(refused) {
  keyAsked ??= new Promise((resolve) => {
    $("key-why").textContent = refused
      ? "The server refused that key: enter the one given to assistant serve --api-key."
      : "This server was started with --api-key: enter that key. This browser keeps it, so it is asked for once.";
    $("key").hidden = false;
    $("key-input").value = "";
    $("key-input").focus();
    $("key").onsubmit = (e) => {
      e.preventDefault();
      localStorage.setItem("pad.key", $("key-input").value.trim());
      $("key").hidden = true;
      keyAsked = null;
      resolve();
      if (pad.view) pad.view.focus();
    };
  });
  return keyAsked;
}

// fetch with the key; a 401 asks for it (once for every request waiting) and sends the request again.
async function request(path, options = {}) {
  for (;;) {
    const response = await fetch(path, { ...options, headers: headers() });
    if (response.status !== 401) return response;
    await askKey(!!localStorage.getItem("pad.key"));
  }
}

async function api(path, options = {}) {
  const response = await request(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ? body.error.message : `${response.status} ${response.statusText}`);
  return body;
}

// Server-sent events from a POST: calls on(name, data) for each; resolves when the stream ends.
async function events(path, body, signal, on) {
  const response = await request(path, { method: "POST", body: JSON.stringify(body), signal });
  if (!response.ok) {
    const error = await response.json().catch(() => ({}));
    throw new Error(error.error ? error.error.message : `${response.status}`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      on(name, data ? JSON.parse(data) : {});
    }
  }
}

// Where the text sent before `pos` starts: at least CONTEXT_CHARS back, at a point that moves in steps of
// CONTEXT_STEP (then on to the next word), so that a request after each keystroke at the end of a long manuscript
// starts where the last one did. The server then reads only the new words: its sessions (and GPT-2's window) keep
// what a prompt shares with the last one from its start, and a start that slid with every keystroke shared nothing
// (GPT-2 small read its whole context again each time: seconds on a CPU).
function since(doc, pos) {
  if (pos <= CONTEXT_CHARS) return 0;
  const start = Math.floor((pos - CONTEXT_CHARS) / CONTEXT_STEP) * CONTEXT_STEP;
  const space = doc.sliceString(start, Math.min(pos, start + 200)).search(/\s/);
  return space < 0 ? start : start + space + 1;
}

function ask(pos, extra) {
  const doc = pad.view.state.doc;
  const s = pad.settings, sampling = {};
  for (const [name] of SAMPLING) if (s[name] !== undefined && s[name] !== "" && s[name] !== null) sampling[name] = Number(s[name]);
  return { document: pad.name, before: doc.sliceString(since(doc, pos), pos), memory: pad.record.memory || "",
    note: pad.record.note || "", model: s.model || null, settings: sampling, alternatives: 5,
    seed: s.seed == null ? null : Number(s.seed), ...extra };
}

// ---- ghost text ----------------------------------------------------------------------------------------------------
let pauseTimer = 0;

function cancelSuggestion() {
  clearTimeout(pauseTimer);
  const s = pad.suggestion;
  if (!s) return;
  pad.suggestion = null;
  if (s.accepted) s.finish();
  else if (s.controller) s.controller.abort();
  if (pad.view.state.field(ghostField)) pad.view.dispatch({ effects: setGhost.of(null) });
}

function schedule() {
  clearTimeout(pauseTimer);
  pauseTimer = setTimeout(suggest, Number(pad.settings.pause));
}

function suggest() {
  const view = pad.view, sel = view.state.selection.main;
  if (!sel.empty || !pad.name) return;
  cancelSuggestion();
  const n = Math.max(1, Number(pad.settings.n) || 1);
  const s = pad.suggestion = { pos: sel.head, shown: 0, accepted: 0, controller: new AbortController(),
    choices: Array.from({ length: n }, () => ({ text: "", done: false })), acceptedText: "" };
  s.finish = () => { s.finished = true; sendAccept(s); };
  pad.requests += 1;
  events("/pad/api/write", ask(sel.head, { n, chars: Number(pad.settings.chars), stop_at: null }), s.controller.signal,
    (name, data) => {
      if (name === "piece") {
        s.choices[data.index].text += data.text;
        if (data.index === s.shown && pad.suggestion === s) showGhost(s);
      } else if (name === "choice") {
        Object.assign(s.choices[data.index], data, { done: true });
        if (pad.suggestion === s && data.index === s.shown) showGhost(s);
        if (data.index === s.shown) sendAccept(s);
      } else if (name === "error") status(data.message, "copies");
    }).catch((e) => { if (e.name !== "AbortError") status(String(e.message || e), "copies"); });
}

function showGhost(s) {
  const c = s.choices[s.shown];
  const text = c.text.slice(s.accepted);
  const cls = c.copied ? "copies" : "";
  const title = c.copied ? `This ${c.copied.warning}` : "";
  pad.view.dispatch({ effects: setGhost.of(text ? { pos: s.pos + 0, text, cls, title } : null) });
  if (text) pad.shownAt = performance.now();
  const counter = s.choices.length > 1 ? ` · ${s.shown + 1} of ${s.choices.length} (Alt-] Alt-[)` : "";
  status(c.copied ? `This suggestion ${c.copied.warning}` + counter : (text ? "Tab accepts · Esc dismisses" + counter : ""),
    c.copied ? "copies" : "");
}

// Marks for `text`, written from `tokens` (each token's text in order; what is past the text is cut).
function marksFor(text, tokens, group) {
  const marks = [];
  let at = 0;
  for (const t of tokens || []) {
    if (at >= text.length) break;
    const to = Math.min(text.length, at + t.text.length);
    if (to > at) marks.push({ from: at, to, spec: { token: t, group } });
    at = to;
  }
  if (at < text.length) marks.push({ from: at, to: text.length, spec: { group } });
  return marks;
}

let groups = 0;

function insertWritten(pos, text, tokens, userEvent) {
  const marks = marksFor(text, tokens, ++groups);
  pad.view.dispatch({ changes: { from: pos, insert: text }, selection: { anchor: pos + text.length },
    effects: addWritten.of({ from: pos, to: pos + text.length, marks }), userEvent, scrollIntoView: true });
}

function acceptGhost(part) {
  const s = pad.suggestion, g = pad.view.state.field(ghostField);
  if (!s || !g) return false;
  const c = s.choices[s.shown];
  if (c.copied && !s.confirmed) {
    if (!confirm(`This suggestion ${c.copied.warning}.\n\nAccept it all the same?`)) return true;
    s.confirmed = true;
  }
  let text = g.text;
  if (part === "word") text = (/^\s*\S+/.exec(text) || [text])[0];
  const offset = s.accepted;
  s.accepted += text.length;
  s.pos += text.length;
  const tokens = tokensFrom(c.tokens, offset);
  pad.accepting = true;
  insertWritten(g.pos, text, tokens, "input.complete");
  pad.accepting = false;
  if (s.accepted < c.text.length || !c.done) {
    if (part === "word") showGhost(s);
  }
  if (part !== "word" || (c.done && s.accepted >= c.text.length)) {
    pad.suggestion = null; // the rest streams in unseen; its sample is accepted up to here
    s.finish();
    if (pad.view.state.field(ghostField)) pad.view.dispatch({ effects: setGhost.of(null) });
  }
  sendAccept(s);
  return true;
}

// The tokens of a choice from character `offset` on (the first one cut to start there).
function tokensFrom(tokens, offset) {
  if (!tokens) return null;
  const found = [];
  let at = 0;
  for (const t of tokens) {
    const end = at + t.text.length;
    if (end > offset) found.push(at >= offset ? t : { ...t, text: t.text.slice(offset - at) });
    at = end;
  }
  return found;
}

// Once a suggestion is over and its sample known, what the writer took of it goes to the store.
function sendAccept(s) {
  const c = s.choices[s.shown];
  if (!s.finished || !s.accepted || !c.done || s.sent || c.sample_id == null) return;
  s.sent = true;
  api("/pad/api/accept", { method: "POST", body: JSON.stringify({ sample_id: c.sample_id, document: pad.name,
    text: c.text.slice(0, s.accepted), anyway: !!s.confirmed }) })
    .then(() => { pad.accepts = (pad.accepts || 0) + 1; })
    .catch((e) => status(String(e.message || e), "copies"));
}

function cycle(step) {
  const s = pad.suggestion;
  if (!s || s.accepted || s.choices.length < 2) return false;
  s.shown = (s.shown + step + s.choices.length) % s.choices.length;
  showGhost(s);
  return true;
}

// ---- longer continuations, retries and branches --------------------------------------------------------------------
// A continuation to the end of the paragraph (at most `long` characters), streaming in as ghost text, then written
// in. A retry of one (`retryOf`) adds a branch; with a seed set, each branch takes the next seed, or it would be the same.
function writeOn(at, retryOf) {
  cancelSuggestion();
  const view = pad.view;
  const pos = at ?? view.state.selection.main.head;
  const c = { pos, text: "", controller: new AbortController() };
  pad.writing = c;
  $("write").disabled = true;
  status("writing… (typing stops it)");
  pad.requests += 1;
  const show = () => view.dispatch({ effects: setGhost.of(c.text ? { pos, text: c.text, cls: "writing" } : null) });
  const seed = pad.settings.seed == null || !retryOf ? {} : { seed: Number(pad.settings.seed) + retryOf.branches.length };
  events("/pad/api/write", ask(pos, { n: 1, chars: Number(pad.settings.long), stop_at: "paragraph", ...seed }),
    c.controller.signal, (name, data) => {
      if (name === "piece" && pad.writing === c) { c.text += data.text; show(); }
      if (name === "choice" && pad.writing === c) {
        pad.writing = null;
        view.dispatch({ effects: setGhost.of(null) });
        pad.accepting = true;
        insertWritten(pos, data.text, data.tokens, "input.complete");
        pad.accepting = false;
        const branch = { text: data.text, tokens: data.tokens, sample_id: data.sample_id };
        const cont = retryOf || { from: pos, branches: [] };
        cont.branches.push(branch);
        cont.current = cont.branches.length - 1;
        cont.to = pos + data.text.length;
        pad.continuation = cont;
        showBranches();
        status(data.copied ? `This continuation ${data.copied.warning}` : "Alt-R retries · Ctrl-Z undoes",
          data.copied ? "copies" : "");
        if (data.sample_id != null) {
          api("/pad/api/accept", { method: "POST", body: JSON.stringify({ sample_id: data.sample_id, document: pad.name,
            text: data.text, anyway: true }) }).catch((e) => status(String(e.message || e), "copies"));
        }
      }
    }).catch((e) => { if (e.name !== "AbortError") status(String(e.message || e), "copies"); })
    .finally(() => { $("write").disabled = false; if (pad.writing === c) { pad.writing = null; view.dispatch({ effects: setGhost.of(null) }); } });
}

function stopWriting() {
  if (!pad.writing) return;
  pad.writing.controller.abort();
  pad.writing = null;
  pad.view.dispatch({ effects: setGhost.of(null) });
}

function retry() {
  const cont = pad.continuation;
  if (!cont) return false;
  pad.view.dispatch({ changes: { from: cont.from, to: cont.to }, userEvent: "delete.retry",
    effects: removeWritten.of({ from: cont.from, to: cont.to, marks: [] }) });
  pad.continuation = null;
  writeOn(cont.from, cont);
  return true;
}

function branch(step) {
  const cont = pad.continuation;
  if (!cont || cont.branches.length < 2) return false;
  cont.current = (cont.current + step + cont.branches.length) % cont.branches.length;
  const b = cont.branches[cont.current];
  pad.accepting = true;
  pad.view.dispatch({ changes: { from: cont.from, to: cont.to, insert: b.text }, userEvent: "input.branch",
    effects: [removeWritten.of({ from: cont.from, to: cont.to, marks: [] }),
      addWritten.of({ from: cont.from, to: cont.from + b.text.length, marks: marksFor(b.text, b.tokens, ++groups) })] });
  pad.accepting = false;
  cont.to = cont.from + b.text.length;
  pad.continuation = cont;
  showBranches();
  return true;
}

function showBranches() {
  const cont = pad.continuation;
  $("retry").disabled = !cont;
  $("branches").textContent = cont && cont.branches.length > 1 ? `branch ${cont.current + 1} of ${cont.branches.length} (Alt-↑ Alt-↓)` : "";
}

// ---- hovering over what the model wrote ----------------------------------------------------------------------------
const alternatives = hoverTooltip((view, pos) => {
  let found = null;
  view.state.field(writtenField).between(pos, pos, (from, to, value) => {
    if (value.spec.token && value.spec.token.alternatives && value.spec.token.alternatives.length) found = { from, to, value };
  });
  if (!found) return null;
  const token = found.value.spec.token;
  return { pos: found.from, end: found.to, above: true, create() {
    const dom = document.createElement("div");
    dom.className = "alternatives";
    for (const [text, p] of token.alternatives) {
      const b = document.createElement("button");
      b.innerHTML = "<span></span><span class=p></span>";
      b.firstChild.textContent = JSON.stringify(text).slice(1, -1); // a line break or a tab shown as \n, \t
      b.dataset.text = text;
      b.lastChild.textContent = `${(p * 100).toFixed(1)}%`;
      if (text === token.text) b.classList.add("chosen");
      b.onmousedown = (e) => { e.preventDefault(); writeOnFrom(found, found.value.spec.group, text); };
      dom.appendChild(b);
    }
    return { dom };
  } };
}, { hoverTime: 250 });

// Put `text` in place of the token at `found` and of the rest of its group, then write on from there.
function writeOnFrom(found, group, text) {
  let end = found.to;
  pad.view.state.field(writtenField).between(found.from, pad.view.state.doc.length, (from, to, value) => {
    if (value.spec.group === group && from >= found.from) end = Math.max(end, to);
  });
  pad.accepting = true;
  pad.view.dispatch({ changes: { from: found.from, to: end, insert: text }, effects: [
    removeWritten.of({ from: found.from, to: end, marks: [] }),
    addWritten.of({ from: found.from, to: found.from + text.length, marks: [{ from: 0, to: text.length, spec: { group: ++groups } }] })],
    selection: { anchor: found.from + text.length }, userEvent: "input.alternative" });
  pad.accepting = false;
  writeOn(found.from + text.length);
}

// ---- documents: open, save as you type, share of the model's text --------------------------------------------------
let saveTimer = 0, dirty = false;

function written() {
  const ranges = [];
  pad.view.state.field(writtenField).between(0, pad.view.state.doc.length, (from, to) => {
    const last = ranges[ranges.length - 1];
    if (last && last[1] === from) last[1] = to; else ranges.push([from, to]);
  });
  return ranges;
}

pad.written = written;
pad.save = () => save();

function showShare(ranges = written()) {
  const total = pad.view.state.doc.length;
  const model = ranges.reduce((sum, [a, b]) => sum + b - a, 0);
  $("share").textContent = `model wrote ${total ? Math.round((100 * model) / total) : 0}%`;
}

function changed() {
  dirty = true;
  clearTimeout(saveTimer);
  saveTimer = setTimeout(save, SAVE_MS);
}

function snapshot() {
  const ranges = written();
  showShare(ranges);
  pad.record.written = ranges;
  pad.record.settings = pad.settings;
  return { text: pad.view.state.doc.toString(), record: pad.record };
}

async function save() {
  clearTimeout(saveTimer);
  if (!dirty || !pad.name) return;
  dirty = false;
  const body = snapshot(), name = pad.name;
  localStorage.setItem("pad.unsaved." + name, JSON.stringify({ ...body, at: Date.now() }));
  try {
    await api(`/pad/api/documents/${encodeURIComponent(name)}`, { method: "PUT", body: JSON.stringify(body) });
    localStorage.removeItem("pad.unsaved." + name);
    pad.saves = (pad.saves || 0) + 1;
  } catch (e) {
    dirty = true;
    status(`not saved (kept in this browser until it is): ${e.message}`, "copies");
  }
}

function saveNow() { // the tab is closing or hidden: keep it in localStorage at once, send it if small enough
  if (!dirty || !pad.name) return;
  const body = snapshot();
  localStorage.setItem("pad.unsaved." + pad.name, JSON.stringify({ ...body, at: Date.now() }));
  const json = JSON.stringify(body);
  if (json.length < 60000) {
    fetch(`/pad/api/documents/${encodeURIComponent(pad.name)}`, { method: "PUT", body: json, keepalive: true, headers: headers() });
  }
}

async function refreshList() {
  const { documents } = await api("/pad/api/documents");
  const select = $("documents");
  select.replaceChildren(...documents.map((d) => new Option(d.name, d.name)));
  if (pad.name && !documents.some((d) => d.name === pad.name)) select.add(new Option(pad.name, pad.name));
  select.value = pad.name || "";
  return documents;
}

async function open(name) {
  if (pad.name) await save();
  cancelSuggestion();
  stopWriting();
  const found = await api(`/pad/api/documents/${encodeURIComponent(name)}`);
  let { text, record } = found;
  const unsaved = JSON.parse(localStorage.getItem("pad.unsaved." + found.name) || "null");
  if (unsaved && unsaved.text !== text) ({ text, record } = unsaved); // what a crash kept from the server
  pad.name = found.name;
  pad.record = record || {};
  pad.settings = { ...DEFAULTS, ...(pad.record.settings || {}) };
  pad.continuation = null;
  localStorage.setItem("pad.current", pad.name);
  history.replaceState(null, "", "#" + encodeURIComponent(pad.name));
  pad.view.setState(newState(text, pad.record.written || []));
  showSettings();
  showShare();
  showBranches();
  await refreshList();
  dirty = !!unsaved;
  if (dirty) save();
  pad.view.focus();
  pad.view.dispatch({ selection: { anchor: pad.view.state.doc.length }, scrollIntoView: true });
  status("");
}

async function create(name) {
  const made = await api("/pad/api/documents", { method: "POST", body: JSON.stringify({ name }) });
  await open(made.name);
}

function newState(text, ranges) {
  const marks = ranges.filter(([a, b]) => b > a && b <= text.length).map(([a, b]) => ({ from: a, to: b, spec: { group: ++groups } }));
  return EditorState.create({ doc: text, extensions: [
    undoHistory(), ghostField, writtenField, writtenUndo, alternatives, EditorView.lineWrapping,
    placeholder("Write here. After a pause the model offers the next words in grey: Tab takes them."),
    Prec.highest(keymap.of(keys)), keymap.of([...defaultKeymap, ...historyKeymap]),
    EditorView.updateListener.of(updated),
  ] }).update({ effects: marks.length ? addWritten.of({ from: 0, to: text.length, marks }) : [] }).state;
}

function updated(update) {
  if (!update.docChanged) {
    if (update.selectionSet && !pad.accepting && pad.suggestion && !update.state.field(ghostField)) cancelSuggestion();
    return;
  }
  changed();
  if (pad.accepting) return;
  const typed = update.transactions.some((tr) => tr.isUserEvent("input") || tr.isUserEvent("delete"));
  if (typed || update.transactions.some((tr) => tr.isUserEvent("undo") || tr.isUserEvent("redo"))) {
    cancelSuggestion();
    stopWriting();
    pad.continuation = null;
    showBranches();
  }
  if (typed && update.transactions.some((tr) => tr.isUserEvent("input.type") || tr.isUserEvent("input.paste"))) schedule();
}

const keys = [
  { key: "Tab", run: () => acceptGhost("all") },
  { key: "Ctrl-ArrowRight", mac: "Alt-ArrowRight", run: () => acceptGhost("word") },
  { key: "Escape", run: () => { const had = !!pad.suggestion || !!pad.writing; cancelSuggestion(); stopWriting(); return had; } },
  { key: "Alt-]", run: () => cycle(1) }, { key: "Alt-[", run: () => cycle(-1) },
  { key: "Ctrl-Enter", mac: "Cmd-Enter", run: () => { writeOn(); return true; } },
  { key: "Alt-r", run: retry }, { key: "Alt-ArrowDown", run: () => branch(1) }, { key: "Alt-ArrowUp", run: () => branch(-1) },
  { key: "Mod-z", run: undo, preventDefault: true }, { key: "Mod-Shift-z", run: redo, preventDefault: true },
  { key: "Mod-y", run: redo, preventDefault: true },
  { key: "Ctrl-/", run: () => { toggleHelp(); return true; } },
];

// ---- settings ------------------------------------------------------------------------------------------------------
function showSettings() {
  for (const name of ["pause", "chars", "n", "long"]) $(name).value = pad.settings[name];
  $("highlight").checked = !!pad.settings.highlight;
  $("editor").classList.toggle("show-written", !!pad.settings.highlight);
  for (const [name] of SAMPLING) $("s-" + name).value = pad.settings[name] ?? "";
  $("memory").value = pad.record.memory || "";
  $("note").value = pad.record.note || "";
  if (pad.settings.model) $("model").value = pad.settings.model;
}

function buildSettings() {
  const fieldset = $("sampling");
  for (const [name, label, step, min, max] of SAMPLING) {
    const l = document.createElement("label");
    l.textContent = label + " ";
    const input = Object.assign(document.createElement("input"), { id: "s-" + name, type: "number", step, min, max,
      placeholder: "the model's default" });
    input.onchange = () => { pad.settings[name] = input.value === "" ? undefined : Number(input.value); changed(); };
    l.appendChild(input);
    fieldset.appendChild(l);
  }
  for (const name of ["pause", "chars", "n", "long"]) $(name).onchange = () => { pad.settings[name] = Number($(name).value); changed(); };
  $("highlight").onchange = () => { pad.settings.highlight = $("highlight").checked; showSettings(); changed(); };
  for (const name of ["memory", "note"]) $(name).oninput = () => { pad.record[name] = $(name).value; changed(); };
  $("model").onchange = () => { pad.settings.model = $("model").value; changed(); };
}

// ---- the header's buttons and the help ------------------------------------------------------------------------------
function toggleHelp(show) { $("help").hidden = show === undefined ? !$("help").hidden : !show; }

function wire() {
  $("documents").onchange = () => open($("documents").value);
  $("new").onclick = async () => { const name = prompt("Name of the new document", "untitled.md"); if (name) await create(name).catch((e) => alert(e.message)); };
  $("rename").onclick = async () => {
    const to = prompt("Rename to", pad.name);
    if (!to || to === pad.name) return;
    await save();
    try {
      const { name } = await api(`/pad/api/documents/${encodeURIComponent(pad.name)}/rename`, { method: "POST", body: JSON.stringify({ to }) });
      localStorage.setItem("pad.current", name);
      pad.name = name;
      history.replaceState(null, "", "#" + encodeURIComponent(name));
      await refreshList();
    } catch (e) { alert(e.message); }
  };
  $("download").onclick = () => {
    const a = Object.assign(document.createElement("a"), { download: pad.name,
      href: URL.createObjectURL(new Blob([pad.view.state.doc.toString()], { type: "text/markdown" })) });
    a.click();
    URL.revokeObjectURL(a.href);
  };
  $("open").onchange = async () => {
    const file = $("open").files[0];
    if (!file) return;
    try {
      const { name } = await api("/pad/api/documents", { method: "POST", body: JSON.stringify({ name: file.name }) });
      await api(`/pad/api/documents/${encodeURIComponent(name)}`, { method: "PUT", body: JSON.stringify({ text: await file.text() }) });
      await open(name);
    } catch (e) { alert(e.message); }
  };
  $("write").onclick = () => { writeOn(); pad.view.focus(); };
  $("retry").onclick = () => { retry(); pad.view.focus(); };
  $("settings-toggle").onclick = () => { $("settings").hidden = !$("settings").hidden; };
  $("theme").onclick = () => {
    const theme = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("pad.theme", theme);
  };
  $("help-toggle").onclick = () => toggleHelp();
  $("help-close").onclick = () => toggleHelp(false);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("help").hidden) toggleHelp(false);
    else if (e.key === "?" && !pad.view.hasFocus && !["INPUT", "TEXTAREA"].includes(document.activeElement.tagName)) toggleHelp();
  });
  addEventListener("pagehide", saveNow);
  document.addEventListener("visibilitychange", () => { if (document.hidden) saveNow(); });
}

async function start() {
  pad.view = new EditorView({ state: newState("", []), parent: $("editor") });
  buildSettings();
  wire();
  api("/v1/models").then(({ data }) => {
    $("model").replaceChildren(new Option("the server's default", ""), ...data.map((m) => new Option(m.id, m.id)));
    $("model").value = pad.settings.model || "";
  }).catch(() => {});
  const documents = await refreshList();
  const wanted = decodeURIComponent(location.hash.slice(1)) || localStorage.getItem("pad.current");
  if (wanted && documents.some((d) => d.name === wanted)) await open(wanted);
  else if (documents.length) await open(documents[0].name);
  else await create("untitled.md");
  pad.ready = true;
}

start().catch((e) => status(String(e.message || e), "copies"));
