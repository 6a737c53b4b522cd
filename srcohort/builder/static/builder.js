// The cohort builder page. Its state is the cohort definition itself, in the structure of the
// YAML (docs/cohorts.md): the cards are drawn from it and edit it in place; the server checks
// it with load_cohort, counts it with the compiled query and returns the YAML. Nothing is kept
// in browser storage and nothing about a patient goes into a URL: every call is a JSON POST.
"use strict";

const S = {
  def: { name: "my-cohort", description: "", patients: { all: [] } },
  catalogue: null,
  config: null,
  seq: 0,            // the newest count request; older answers are dropped
  digest: null,
  lastCounts: null,
};
window.builderTimings = [];   // change -> counts drawn, in ms (read by benchmarks and tests)

// -- small helpers ------------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

async function api(route, body) {
  const response = await fetch(`api/${route}`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}), cache: "no-store", credentials: "same-origin",
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

const meaning = (code) => (S.catalogue && S.catalogue.meanings[code]) || code;
const coded = (code) => { const m = meaning(code); return m === code ? code : `${m} (${code})`; };
const asList = (value) => (value === undefined || value === null ? [] :
  Array.isArray(value) ? value : [value]);
// One value stays a scalar, several a list, none removes the key: the YAML a person would write.
function setValues(obj, key, values) {
  if (values.length === 0) delete obj[key];
  else obj[key] = values.length === 1 ? values[0] : values;
}
const numberOrNull = (text) => (text === "" ? null : Number(text));
const leafKind = (expr) => Object.keys(expr)[0];

function status(text, state) {
  const node = document.getElementById("status");
  node.textContent = text;
  node.dataset.state = state;
}

function message(lines, kind) {
  const list = document.getElementById("messages");
  list.replaceChildren(...asList(lines).map((line) => el("li", { class: kind || "" }, line)));
}

// -- choosing values ----------------------------------------------------------------------------
function select(role, options, current, onchange, placeholder) {
  const node = el("select", { "data-role": role, onchange: (e) => onchange(e.target.value) });
  if (placeholder !== undefined) node.append(el("option", { value: "" }, placeholder));
  for (const [value, label] of options) {
    node.append(el("option", { value, selected: String(value) === String(current) }, label));
  }
  if (current !== undefined && current !== null && current !== "" &&
      !options.some(([value]) => String(value) === String(current))) {
    node.append(el("option", { value: current, selected: true }, `${coded(String(current))}`));
  }
  return node;
}

// Chips of the chosen values, and a list to add one more (any of them matches).
function chips(role, values, options, onchange) {
  const box = el("span", { class: "chips", "data-role": role });
  values.forEach((value, i) => box.append(el("span", { class: "chip", "data-value": value },
    options.find(([v]) => v === value)?.[1] || coded(value),
    el("button", { class: "x", title: "remove", "data-role": "remove-value",
                   onclick: () => onchange(values.filter((_, j) => j !== i)) }, "×"))));
  const rest = options.filter(([value]) => !values.includes(value));
  box.append(select("add-value", rest, "", (value) => value && onchange([...values, value]),
                    values.length ? "+ or…" : "choose…"));
  return box;
}

function numberInput(role, value, onchange, placeholder) {
  return el("input", { type: "number", step: "any", "data-role": role, value: value ?? "",
                       placeholder: placeholder ?? "", class: "num",
                       onchange: (e) => onchange(numberOrNull(e.target.value)) });
}

function textInput(role, value, onchange, placeholder, type) {
  return el("input", { type: type || "text", "data-role": role, value: value ?? "",
                       placeholder: placeholder ?? "",
                       onchange: (e) => onchange(e.target.value) });
}

// {min, max} editors write only the bounds given; an empty one leaves the key out.
function bounds(obj, kind, hint) {
  const set = (key) => (value) => {
    if (value === null || value === "") delete obj[key]; else obj[key] = value;
    changed(false);
  };
  const input = (key) => (kind === "date"
    ? textInput(key, obj[key], set(key), hint?.[key] ?? "YYYY-MM-DD", "date")
    : numberInput(key, obj[key], set(key), hint?.[key] !== undefined ? `${hint[key]}` : key));
  return [el("span", { class: "lbl" }, "from"), input("min"), el("span", { class: "lbl" }, "to"),
          input("max")];
}

function row(role, label, content, onremove, attrs) {
  return el("div", { class: "row", "data-role": role, ...(attrs || {}) },
    el("span", { class: "what" }, label), ...content,
    el("button", { class: "x", title: "remove this condition", "data-role": "remove-condition",
                   onclick: () => { onremove(); changed(true); } }, "×"));
}

// -- the expression tree ------------------------------------------------------------------------
// A slot is where an expression lives: the definition's root, a list element, or under "not".
function rootSlot() {
  return { get: () => S.def.patients, set: (v) => { S.def.patients = v; }, remove: null };
}
function listSlot(list, i) {
  return { get: () => list[i], set: (v) => { list[i] = v; },
           remove: () => { list.splice(i, 1); } };
}

const summaries = [];     // [span, expression] of every card: its one-line description
function render() {
  summaries.length = 0;
  const tree = document.getElementById("tree");
  tree.replaceChildren(renderExpr(rootSlot(), 0, true));
  document.getElementById("cohort-name").value = S.def.name ?? "";
  document.getElementById("cohort-description").value = S.def.description ?? "";
}

function addButtons(list) {
  const add = (expr) => () => { list.push(expr()); changed(true); };
  return el("div", { class: "buttons add" },
    el("button", { "data-role": "add-series", onclick: add(() => ({ series: {} })) },
       "+ series"),
    el("button", { "data-role": "add-annotation", onclick: add(() => ({ annotation: {} })) },
       "+ annotation (one SR or SEG)"),
    el("button", { "data-role": "add-any", onclick: add(() => ({ any: [] })) },
       "+ any of…"));
}

function renderExpr(slot, depth, root) {
  const expr = slot.get();
  const kind = leafKind(expr);
  if (kind === "all" || kind === "any") {
    const list = expr[kind];
    const box = el("div", { class: `group ${kind}`, "data-kind": kind, "data-depth": depth });
    const header = el("div", { class: "group-head" },
      select("group-op", [["all", "all of"], ["any", "any of"]], kind, (op) => {
        slot.set({ [op]: list }); changed(true);
      }));
    if (!root) header.append(removeButton(slot));
    box.append(header);
    list.forEach((_, i) => box.append(renderExpr(listSlot(list, i), depth + 1, false)));
    box.append(addButtons(list));
    return box;
  }
  if (kind === "not") {
    const inner = { get: () => expr.not, set: (v) => { expr.not = v; }, remove: null };
    const box = el("div", { class: "group not", "data-kind": "not" },
      el("div", { class: "group-head" }, el("b", {}, "NOT: no patient object matches"),
         el("button", { "data-role": "unnegate", onclick: () => { slot.set(expr.not);
                                                                   changed(true); } },
            "undo NOT"), root ? null : removeButton(slot)),
      renderExpr(inner, depth + 1, false));
    return box;
  }
  const card = kind === "series" ? seriesCard(expr.series) : annotationCard(expr.annotation);
  const summary = el("span", { class: "summary" }, describe(expr));
  summaries.push([summary, expr]);
  card.prepend(el("div", { class: "card-head" },
    el("b", {}, kind === "series" ? "Series" : "Annotation (one SR or SEG)"), summary,
    el("button", { "data-role": "negate", title: "patients without such an object",
                   onclick: () => { slot.set({ not: expr }); changed(true); } }, "NOT"),
    slot.remove ? removeButton(slot) : el("button", {
      "data-role": "remove", onclick: () => { S.def.patients = { all: [] }; changed(true); } },
      "×")));
  if (root) {        // a lone leaf at the root: adding a criterion makes it the first of "all"
    const wrap = { all: [expr] };
    return el("div", { class: "group all" }, card,
      addButtons({ push: (e) => { wrap.all.push(e); S.def.patients = wrap; } }));
  }
  return card;
}

function removeButton(slot) {
  return el("button", { class: "x", "data-role": "remove", title: "remove",
                        onclick: () => { slot.remove(); changed(true); } }, "×");
}

// -- series cards -------------------------------------------------------------------------------
function seriesCard(series) {
  const card = el("div", { class: "card series", "data-kind": "series" });
  const index = S.catalogue.index;
  card.append(el("div", { class: "row" }, el("span", { class: "what" }, "modality"),
    chips("modality", asList(series.modality).map(String),
          index.modalities.map((m) => [m.code, `${m.code} (${m.count} patients)`]),
          (values) => { setValues(series, "modality", values); changed(true); })));
  const attributes = series.attributes || {};
  for (const name of Object.keys(attributes)) {
    const spec = S.catalogue.attributes.find((a) => a.name === name) ||
                 { name, keyword: name, kind: "keyword" };
    const seen = index.attributes[name] || {};
    const remove = () => { delete attributes[name];
                           if (!Object.keys(attributes).length) delete series.attributes; };
    let content;
    if (spec.kind === "keyword") {
      content = [chips("attribute-values", asList(attributes[name]).map(String),
        (seen.values || []).map((v) => [String(v), String(v)]),
        (values) => { if (values.length) setValues(attributes, name, values);
                      else attributes[name] = []; changed(true); })];
    } else {
      if (typeof attributes[name] !== "object" || Array.isArray(attributes[name])) {
        attributes[name] = {};
      }
      content = bounds(attributes[name], spec.kind === "date" ? "date" : "number", seen);
    }
    card.append(row("attribute", spec.keyword, content, remove, { "data-attribute": name }));
  }
  windowAndCount(card, series);
  const options = S.catalogue.attributes.filter((a) => !(a.name in attributes))
    .map((a) => [`attribute:${a.name}`, `DICOM ${a.keyword}`]);
  card.append(el("div", { class: "row" }, select("add-condition",
    [...options, ["within", "time window around an event"], ["at_least", "at least n series"]],
    "", (choice) => {
      if (choice.startsWith("attribute:")) {
        const name = choice.slice(10);
        const kind = S.catalogue.attributes.find((a) => a.name === name).kind;
        series.attributes = { ...(series.attributes || {}), [name]: kind === "keyword" ? [] : {} };
      } else addWindowOrCount(series, choice);
      changed(true);
    }, "+ add condition…")));
  return card;
}

function addWindowOrCount(obj, choice) {
  if (choice === "within") obj.within = { event: S.catalogue.events[0], days: [null, null] };
  if (choice === "at_least") obj.at_least = 2;
}

function windowAndCount(card, obj) {
  if (obj.within) {
    const w = obj.within;
    const range = S.catalogue.index.events[w.event] || {};
    card.append(row("within", "within", [
      select("event", S.catalogue.events.map((e) => [e, e]), w.event, (v) => {
        w.event = v; changed(false); }),
      el("span", { class: "lbl" }, "days from"),
      numberInput("days-from", w.days[0], (v) => { w.days[0] = v === null ? null : Math.trunc(v);
                                                   changed(false); },
                  range.min !== undefined ? `${range.min}` : "from"),
      el("span", { class: "lbl" }, "to"),
      numberInput("days-to", w.days[1], (v) => { w.days[1] = v === null ? null : Math.trunc(v);
                                                 changed(false); },
                  range.max !== undefined ? `${range.max}` : "to"),
      el("span", { class: "lbl" }, "(negative: before the event)")],
    () => { delete obj.within; }));
  }
  if (obj.at_least !== undefined) {
    card.append(row("at-least", "at least", [numberInput("at-least", obj.at_least, (v) => {
      obj.at_least = v === null ? 1 : Math.trunc(v); changed(false); })],
    () => { delete obj.at_least; }));
  }
}

// -- annotation cards ---------------------------------------------------------------------------
// The study's templates an annotation card names: by TemplateIdentifier ("template") or, for
// templates without one, by the SR's root concept ("title").
function profileOf(a) {
  return S.catalogue.templates.find((t) => (a.template !== undefined
    ? t.template_id === String(a.template) : a.title !== undefined && !t.template_id &&
      t.root === a.title));
}

function fieldsOf(a) {
  const profile = profileOf(a);
  if (profile) return S.catalogue.fields.filter((f) => f.template === profile.template);
  return a.template !== undefined || a.title !== undefined ? [] : S.catalogue.fields;
}

function fieldSpec(name, a) {
  return fieldsOf(a).find((f) => f.field === name) ||
         S.catalogue.fields.find((f) => f.field === name);
}

function annotationCard(a) {
  const card = el("div", { class: "card annotation", "data-kind": "annotation" });
  const index = S.catalogue.index;
  const templates = S.catalogue.templates.map((t) => [t.template,
    `${t.name}${t.template_id ? ` (TID ${t.template_id})` : ""}`]);
  const profile = profileOf(a);
  card.append(el("div", { class: "row" },
    el("span", { class: "what" }, "kind"),
    select("kind", S.catalogue.kinds.map((k) => [k, k]), asList(a.kind)[0], (v) => {
      setValues(a, "kind", v ? [v] : []); changed(true); }, "SR or SEG"),
    el("span", { class: "what" }, "template"),
    select("template", templates, profile ? profile.template : a.template, (v) => {
      delete a.template; delete a.title;
      if (v) Object.assign(a, S.catalogue.templates.find((t) => t.template === v).identify);
      changed(true); }, "any"),
    el("span", { class: "what" }, "title"),
    select("title", index.titles.map((t) => [t.code, coded(t.code)]), a.title, (v) => {
      if (v) a.title = v; else delete a.title; changed(true); }, "any")));
  for (const name of Object.keys(a.fields || {})) card.append(fieldRow(a, name));
  asList(a.codes).forEach((c, i) => card.append(codeRow(a, c, i)));
  asList(a.numbers).forEach((n, i) => card.append(numberRow(a, n, i)));
  asList(a.texts).forEach((t, i) => card.append(textRow(a, t, i)));
  asList(a.dates).forEach((d, i) => card.append(dateRow(a, d, i)));
  asList(a.segments).forEach((s, i) => card.append(segmentRow(a, s, i)));
  windowAndCount(card, a);
  const fields = fieldsOf(a).filter((f) => !(a.fields && f.field in a.fields))
    .map((f) => [`field:${f.template}:${f.field}`,
                 `${f.field.replaceAll("_", " ")} (${f.template_name})`]);
  card.append(el("div", { class: "row" }, select("add-condition", [
    ...fields, ["segments", "segment (of this SEG)"], ["codes", "coded item (any code)"],
    ["numbers", "numeric item"], ["texts", "text item contains…"], ["dates", "date item"],
    ["within", "time window around an event"], ["at_least", "at least n annotations"]],
  "", (choice) => {
    if (choice.startsWith("field:")) {
      const [, template, name] = choice.split(":");
      const spec = S.catalogue.fields.find((f) => f.template === template && f.field === name);
      if (!profileOf(a)) Object.assign(a, spec.identify);   // the card says which SRs it means
      a.fields = { ...(a.fields || {}), [name]: spec.value_type === "CODE" ? [] : {} };
    } else if (["segments", "codes", "numbers", "texts", "dates"].includes(choice)) {
      if (choice === "segments" && !a.kind) a.kind = "SEG";
      a[choice] = [...asList(a[choice]), {}];
    } else addWindowOrCount(a, choice);
    changed(true);
  }, "+ add condition…")));
  return card;
}

function fieldRow(a, name) {
  const spec = fieldSpec(name, a);
  const remove = () => { delete a.fields[name]; if (!Object.keys(a.fields).length) delete a.fields; };
  const label = spec ? `${name.replaceAll("_", " ")}` : name;
  if (!spec || spec.value_type === "CODE") {
    const terms = spec ? spec.terms : [];
    const seen = spec ? (S.catalogue.index.fields[`field:${spec.template}:${name}`] || {}).codes
                      || {} : {};
    // Canonical names are shown as their codes: the page writes codes, YAML may use either.
    const values = asList(a.fields[name]).map((v) => terms.find((t) => t.name === v)?.code || v);
    return row("field", label, [chips("field-values", values.map(String),
      terms.map((t) => [t.code, `${t.meaning} (${t.code})${seen[t.code] ? "" : " — none indexed"}`]),
      (chosen) => { if (chosen.length) setValues(a.fields, name, chosen);
                    else a.fields[name] = []; changed(true); })],
    remove, { "data-field": name });
  }
  const condition = a.fields[name];
  const seen = S.catalogue.index.fields[`field:${spec.template}:${name}`] || {};
  const content = bounds(condition, spec.value_type === "DATE" ? "date" : "number", seen);
  if (spec.value_type === "NUM" && spec.units.length) {
    content.push(select("unit", spec.units.map((u) => [u, u]), condition.unit || spec.unit,
      (u) => { if (u && u !== spec.unit) condition.unit = u; else delete condition.unit;
               changed(false); }));
  }
  return row("field", label, content, remove, { "data-field": name });
}

function itemRemover(a, key, i) {
  return () => { a[key].splice(i, 1); if (!a[key].length) delete a[key]; };
}

function nameSelect(item, names) {
  return select("item-name", names.map((n) => [n.code, coded(n.code)]), item.name, (v) => {
    if (v) item.name = v; else delete item.name; changed(true); }, "any name");
}

function codeRow(a, c, i) {
  const names = S.catalogue.index.codes;
  const values = (names.find((n) => n.code === c.name)?.values) ||
                 names.flatMap((n) => n.values);
  return row("code", "coded item", [nameSelect(c, names), el("span", { class: "lbl" }, "="),
    chips("code-values", asList(c.value).map(String),
          [...new Map(values.map((v) => [v.code, [v.code, coded(v.code)]])).values()],
          (chosen) => { setValues(c, "value", chosen); changed(true); })],
  itemRemover(a, "codes", i));
}

function numberRow(a, n, i) {
  const spec = S.catalogue.index.numbers.find((x) => x.code === n.name);
  const units = spec ? spec.units.map((u) => u.unit) : [];
  const hint = spec && spec.units.length ? spec.units[0] : {};
  return row("number", "numeric item", [nameSelect(n, S.catalogue.index.numbers),
    ...bounds(n, "number", hint),
    select("unit", units.map((u) => [u, u]), n.unit, (u) => {
      if (u) n.unit = u; else delete n.unit; changed(false); }, "any unit")],
  itemRemover(a, "numbers", i));
}

function textRow(a, t, i) {
  return row("text", "text item", [nameSelect(t, S.catalogue.index.texts),
    el("span", { class: "lbl" }, "contains"),
    textInput("contains", t.contains, (v) => { t.contains = v; changed(false); }, "text")],
  itemRemover(a, "texts", i));
}

function dateRow(a, d, i) {
  const spec = S.catalogue.index.dates.find((x) => x.code === d.name) || {};
  return row("date", "date item", [nameSelect(d, S.catalogue.index.dates),
    ...bounds(d, "date", spec)], itemRemover(a, "dates", i));
}

function segmentRow(a, s, i) {
  const segments = S.catalogue.index.segments;
  const set = (key) => (v) => { if (v) s[key] = v; else delete s[key]; changed(true); };
  const content = [
    select("segment-type", segments.types.map((t) => [t.code,
      `${t.labels[0] || meaning(t.code)} (${t.code})`]), s.type, set("type"), "any structure"),
    el("span", { class: "lbl" }, "label"),
    select("segment-label", segments.labels.map((l) => [l, l]), s.label, set("label"), "any"),
    el("span", { class: "lbl" }, "drawn"),
    select("segment-algorithm", S.catalogue.algorithm_types.map((t) => [t, t.toLowerCase()]),
           s.algorithm_type, set("algorithm_type"), "any way")];
  if (s.category !== undefined) {
    content.push(el("span", { class: "lbl" }, "category"),
                 textInput("segment-category", s.category, set("category")));
  }
  if (s.number !== undefined) {
    content.push(el("span", { class: "lbl" }, "number"),
                 numberInput("segment-number", s.number, (v) => {
                   if (v === null) delete s.number; else s.number = Math.trunc(v);
                   changed(false); }));
  }
  return row("segment", "segment", content, itemRemover(a, "segments", i));
}

// -- describing criteria (funnel labels) ------------------------------------------------------
function describeWindow(w) {
  if (!w) return "";
  const [from, to] = w.days;
  return ` within ${from ?? "…"}..${to ?? "…"} days of ${w.event}`;
}

function describe(expr) {
  const kind = leafKind(expr);
  if (kind === "all" || kind === "any") {
    return `${kind} of (${expr[kind].map(describe).join("; ") || "nothing yet"})`;
  }
  if (kind === "not") return `NOT ${describe(expr.not)}`;
  const x = expr[kind];
  const parts = [];
  if (kind === "series") {
    parts.push(asList(x.modality).join("/") || "any series");
    for (const [name, value] of Object.entries(x.attributes || {})) {
      const keyword = name.split(" ").pop().replace(/_[a-z]+$/, "");
      parts.push(typeof value === "object" && !Array.isArray(value)
        ? `${keyword} ${value.min ?? "…"}..${value.max ?? "…"}`
        : `${keyword} ${asList(value).join("/")}`);
    }
  } else {
    const template = profileOf(x);
    parts.push(template ? template.name : asList(x.kind).join("/") || "SR or SEG");
    if (x.title && !(template && !template.template_id)) parts.push(meaning(x.title));
    for (const [name, value] of Object.entries(x.fields || {})) {
      parts.push(typeof value === "object" && !Array.isArray(value)
        ? `${name} ${value.min ?? "…"}..${value.max ?? "…"}${value.unit ? ` ${value.unit}` : ""}`
        : `${name} = ${asList(value).map(meaning).join(" or ")}`);
    }
    const segments = asList(x.segments).map((s) => (s.type ? meaning(s.type) : s.label || "any"));
    if (segments.length) parts.push(`with ${segments.join(" + ")}`);
    for (const c of asList(x.codes)) {
      parts.push(`${c.name ? meaning(c.name) : "code"} = ${asList(c.value).map(meaning).join(" or ") || "any"}`);
    }
    for (const n of asList(x.numbers)) parts.push(`${n.name ? meaning(n.name) : "number"} ${n.min ?? "…"}..${n.max ?? "…"}${n.unit ? ` ${n.unit}` : ""}`);
    for (const t of asList(x.texts)) parts.push(`"${t.contains ?? ""}"`);
    for (const d of asList(x.dates)) parts.push(`${d.name ? meaning(d.name) : "date"} ${d.min ?? "…"}..${d.max ?? "…"}`);
  }
  let text = parts.join(", ") + describeWindow(x.within);
  if (x.at_least && x.at_least > 1) text = `≥${x.at_least}× ${text}`;
  return text;
}

function criteria() {
  const root = S.def.patients;
  return leafKind(root) === "all" ? root.all : [root];
}

// -- counting -----------------------------------------------------------------------------------
let changeStarted = 0;
function changed(structural) {
  changeStarted = performance.now();
  if (structural) render();
  else for (const [span, expr] of summaries) span.textContent = describe(expr);
  count();
}

function definition() {
  return { name: S.def.name, ...(S.def.description ? { description: S.def.description } : {}),
           patients: S.def.patients };
}

async function count() {
  const seq = ++S.seq;
  const started = changeStarted || performance.now();
  if (leafKind(S.def.patients) === "all" && S.def.patients.all.length === 0) {
    status("add a criterion", "empty");
    drawCounts(null);
    document.getElementById("yaml").value = "";
    return;
  }
  status("counting…", "counting");
  const body = { definition: definition() };
  try {
    const answer = await api("count", body);
    if (seq !== S.seq) return;
    S.digest = answer.digest;
    S.lastCounts = answer.counts;
    document.getElementById("yaml").value = answer.yaml;
    drawCounts(answer.counts);
    window.builderTimings.push(performance.now() - started);
    const node = document.getElementById("status");
    node.dataset.digest = answer.digest;
    status(`counted · version ${answer.digest.slice(0, 12)}`, "ok");
    // The (heavier) panels are asked for once the counts are drawn, so they never slow them.
    const panels = await api("distributions", body).catch((e) => ({ error: e.message }));
    if (seq === S.seq) {
      drawPanels(panels);
      document.body.dataset.panels = String(seq);    // everything of this change is drawn
    }
  } catch (error) {
    if (seq !== S.seq) return;
    status(error.message, "error");
    drawCounts(null);
  }
}

function drawCounts(counts) {
  const total = document.getElementById("total");
  const sites = document.getElementById("sites");
  const funnel = document.getElementById("funnel");
  total.classList.toggle("stale", !counts);
  if (!counts) { total.textContent = "–"; sites.replaceChildren(); funnel.replaceChildren(); return; }
  total.textContent = counts.cohort.total;
  document.getElementById("everyone").textContent =
    `of ${counts.everyone.total} patients indexed`;
  const names = Object.keys(counts.everyone.sites);
  sites.replaceChildren(el("tr", {}, el("th", {}, "site"), el("th", {}, "in cohort"),
                           el("th", {}, "indexed")),
    ...names.map((site) => el("tr", { "data-role": "site-count", "data-site": site },
      el("td", {}, site), el("td", { "data-role": "site-total" }, counts.cohort.sites[site] ?? 0),
      el("td", {}, counts.everyone.sites[site]))));
  const labels = criteria().map(describe);
  const widest = Math.max(1, counts.everyone.total);
  const bar = (n) => { const b = el("span", { class: "bar" }); b.style.width = `${(100 * n) / widest}%`; return b; };
  funnel.replaceChildren(
    el("tr", {}, el("th", {}, "step"), el("th", {}, "patients"), el("th", {}, ""),
       ...names.map((site) => el("th", { class: "site" }, site))),
    el("tr", { "data-role": "step", "data-step": 0 }, el("td", {}, "everyone indexed"),
       el("td", { "data-role": "step-total" }, counts.everyone.total),
       el("td", { class: "barcell" }, bar(counts.everyone.total)),
       ...names.map((site) => el("td", {}, counts.everyone.sites[site]))),
    ...counts.steps.map((step, i) => el("tr", { "data-role": "step", "data-step": i + 1 },
      el("td", {}, `${i + 1}. ${labels[i] ?? ""}`),
      el("td", { "data-role": "step-total" }, step.total),
      el("td", { class: "barcell" }, bar(step.total)),
      ...names.map((site) => el("td", { "data-site": site }, step.sites[site] ?? 0)))));
}

// -- distribution panels (Vega-Lite) ----------------------------------------------------------
const charts = [];
function drawPanels(answer) {
  const box = document.getElementById("panels");
  while (charts.length) charts.pop().finalize();
  if (answer.error) { box.replaceChildren(el("p", { class: "error" }, answer.error)); return; }
  if (!window.vega || !window.vegaLite || !vega.expressionInterpreter) {
    box.replaceChildren(el("p", { class: "hint" },
      "Charts are off: the Vega libraries are not installed (tools/install-vega.sh)."));
    return;
  }
  box.replaceChildren();
  for (const panel of answer.panels) {
    if (!panel.bars.length) continue;
    // One row per value and site, not aggregated, so a clicked bar still holds its condition.
    const totals = {};
    for (const b of panel.bars) totals[b.value] = (totals[b.value] || 0) + b.patients;
    const values = panel.bars.map((b) => ({ ...b, total: totals[b.value],
      label: b.value === b.meaning ? meaning(b.value) : b.meaning }));
    const spec = {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      title: panel.title, width: 320, data: { values },
      mark: { type: "bar", cursor: "pointer", tooltip: true },
      encoding: {
        y: { field: "label", type: "nominal", title: null,
             sort: { field: "total", op: "max", order: "descending" }, axis: { labelLimit: 220 } },
        x: { field: "patients", type: "quantitative", title: "patients", stack: "zero" },
        color: { field: "site", type: "nominal", title: "site" },
        tooltip: [{ field: "label" }, { field: "site" }, { field: "patients" }],
      },
    };
    const holder = el("div", { class: "panel", "data-panel": panel.id });
    box.append(holder);
    const compiled = vegaLite.compile(spec).spec;
    const runtime = vega.parse(compiled, null, { ast: true });
    const view = new vega.View(runtime, { renderer: "svg", container: holder, hover: true,
                                          expr: vega.expressionInterpreter });
    view.addEventListener("click", (_event, item) => {
      const datum = item && item.datum;
      if (datum && datum.condition && Object.keys(datum.condition).length) {
        addCriterion(JSON.parse(JSON.stringify(datum.condition)));
      }
    });
    view.runAsync();
    charts.push(view);
  }
}

function addCriterion(expr) {
  if (leafKind(S.def.patients) !== "all") S.def.patients = { all: [S.def.patients] };
  S.def.patients.all.push(expr);
  changed(true);
}

// -- YAML, saved cohorts, actions, the patient list ---------------------------------------------
function useDefinition(def) {
  S.def = { name: def.name, description: def.description ?? "", patients: def.patients };
  changed(true);
}

async function applyYaml(text) {
  try {
    const answer = await api("parse", { yaml: text });
    useDefinition(answer.definition);
    message(`definition read (version ${answer.digest.slice(0, 12)})`);
  } catch (error) {
    message(error.message, "error");
  }
}

async function refreshSaved(selected) {
  const answer = await api("cohorts");
  const node = document.querySelector("[data-role=saved]");
  node.replaceChildren(...answer.cohorts.map((c) => el("option", { value: c.name,
    selected: c.name === selected }, `${c.name}${c.source === "study" ? " (study)" : ""}`)));
}

function describeRecord(record) {
  const sites = Object.entries(record.snapshot).map(([site, s]) =>
    `${site}: ${s.patients.documents} patients, ${s.series.documents} series`).join("; ");
  return `version ${record.digest.slice(0, 12)}, ${record.counts.cohort.total} patients, counted ` +
         `${record.counted_at} on ${sites}`;
}

function wireControls() {
  const on = (role, event, handler) =>
    document.querySelector(`[data-role=${role}]`).addEventListener(event, handler);
  on("name", "change", (e) => { S.def.name = e.target.value; changed(false); });
  on("description", "change", (e) => { S.def.description = e.target.value; changed(false); });
  on("apply-yaml", "click", () => applyYaml(document.getElementById("yaml").value));
  on("load-file", "change", async (e) => {
    const file = e.target.files[0];
    if (file) await applyYaml(await file.text());
    e.target.value = "";
  });
  on("save", "click", async () => {
    try {
      const labels = criteria().map(describe);
      const answer = await api("save", { definition: definition(), labels });
      document.getElementById("version").textContent = `saved ${answer.file}: ` +
        describeRecord(answer.record);
      message("saved");
      await refreshSaved(S.def.name);
    } catch (error) { message(error.message, "error"); }
  });
  on("open", "click", async () => {
    try {
      const name = document.querySelector("[data-role=saved]").value;
      const answer = await api("open", { name });
      useDefinition(answer.definition);
      document.getElementById("version").textContent = answer.counted
        ? `saved: ${describeRecord(answer.counted)}` : `${name}: shipped with the study`;
    } catch (error) { message(error.message, "error"); }
  });
  on("recount", "click", async () => {
    try {
      const name = document.querySelector("[data-role=saved]").value;
      const answer = await api("recount", { name });
      message([`re-count of ${name}: ${answer.counts.cohort.total} patients now`,
               ...answer.changes]);
    } catch (error) { message(error.message, "error"); }
  });
  on("show-patients", "click", async () => {
    const box = document.getElementById("patients");
    try {
      const answer = await api("patients", { definition: definition() });
      box.replaceChildren(el("p", {}, `${answer.total} patients` +
          (answer.shown < answer.total ? ` (first ${answer.shown} shown)` : "")),
        el("table", { class: "numbers" }, el("tr", {}, el("th", {}, "site"),
          el("th", {}, "patient ID"), el("th", {}, "modalities")),
        ...answer.patients.map((p) => el("tr", { "data-role": "patient" }, el("td", {}, p.site),
          el("td", {}, p.patient_id), el("td", {}, p.modalities.join(", "))))));
    } catch (error) { box.replaceChildren(el("p", { class: "error" }, error.message)); }
  });
  on("hide-patients", "click", () => document.getElementById("patients").replaceChildren());
}

function drawActions() {
  const box = document.getElementById("actions");
  const result = document.getElementById("action-result");
  for (const action of S.config.actions) {
    const params = {};
    const controls = [];
    if (action.name === "export") {
      controls.push(select("export-format", [["unified", "unified"], ["dicom", "DICOM"],
        ["both", "both"]], "unified", (v) => { params.format = v; }));
    }
    if (action.name === "federated") {
      controls.push(el("label", {}, "k ", numberInput("k", 5, (v) => { params.k = v; })));
    }
    box.append(el("span", { class: "action" }, ...controls,
      el("button", { "data-role": `action-${action.name}`, disabled: !!action.unavailable,
                     title: action.unavailable || "", onclick: async () => {
        result.textContent = `${action.label}: running…`;
        try {
          const answer = await api("action", { action: action.name, definition: definition(),
                                               params });
          result.textContent = `${action.label} (version ${answer.digest.slice(0, 12)}):\n` +
            JSON.stringify(answer.result, null, 1);
        } catch (error) { result.textContent = `${action.label} failed: ${error.message}`; }
      } }, action.label)));
  }
}

async function start() {
  wireControls();
  try {
    [S.config, S.catalogue] = await Promise.all([api("config"), api("catalogue")]);
  } catch (error) {
    status(`cannot load: ${error.message}`, "error");
    return;
  }
  document.getElementById("study").textContent =
    `${S.config.study.title || S.config.study.name} · sites: ${S.config.sites.join(", ")}`;
  drawActions();
  await refreshSaved();
  render();
  status("add a criterion", "empty");
  document.body.dataset.ready = "yes";
}

start();
