// The /ops dashboard: one call to /v1/quality/dashboard, charts drawn as plain SVG; for ops,
// the message browser (/v1/ops/...): rejected lists and dead letters, opened masked, replayed.
// No library, no CDN: the page works on a network with no internet.
// Times: the server sends them in +08:00 with the offset; they are shown as sent, never
// converted to the browser's zone.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const DIMS = ["及时性", "完整性", "规范性", "合理性"];
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
const pct = (x) => (x === null || x === undefined ? "—" : (x * 100).toFixed(1) + "%");
const num = (x) => (x === null || x === undefined ? "—" : Number(x).toLocaleString("zh-CN"));
const hours = (h) => (h === null || h === undefined ? "—" : h < 48 ? h.toFixed(0) + " h" : (h / 24).toFixed(1) + " d");
// "2026-11-30T23:15:10+08:00" -> "2026-11-30 23:15:10 +08:00": the server's own text.
function when(text, seconds = true) {
  if (!text) return "—";
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2})?(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) return text;
  return `${m[1]} ${m[2]}${seconds && m[3] ? m[3] : ""} ${m[4] === "Z" ? "+00:00" : m[4]}`;
}
function level(rate, good, fair) {
  if (rate === null || rate === undefined) return "na";
  return rate >= good ? "good" : rate >= fair ? "fair" : "poor";
}

function kpis(data) {
  const t = { received: 0, accepted: 0, rejected: 0, warned: 0, revisions: 0, resubmissions: 0, timely: 0, known: 0 };
  for (const d of data.days) {
    for (const k of ["received", "accepted", "rejected", "warned", "revisions", "resubmissions"]) t[k] += d[k];
    if (d.timely_rate !== null) { t.timely += d.timely_rate * d.lag_known; t.known += d.lag_known; }
  }
  const passRate = t.received ? t.accepted / t.received : null;
  const timely = t.known ? t.timely / t.known : null;
  const silent = data.alerts.filter((a) => a.kind === "silent").length;
  const items = [
    ["接收清单", num(t.received), "lists received", "na"],
    ["填写规范率", pct(passRate), "passed every reject rule", level(passRate, 1, 0.95)],
    ["上传及时率", pct(timely), "within 7 days of discharge", level(timely, 1, 0.9)],
    ["拒收", num(t.rejected), "rejected", t.rejected ? "poor" : "good"],
    ["带警告", num(t.warned), "accepted with warnings", t.warned ? "fair" : "good"],
    ["更正 / 重传", `${num(t.revisions)} / ${num(t.resubmissions)}`, "revisions / after reject", "na"],
    ["医院", num(data.hospitals.length), `${silent} silent`, silent ? "fair" : "na"],
  ];
  const box = $("kpis");
  box.replaceChildren();
  for (const [label, value, sub, cls] of items) {
    const card = el("div", { class: `kpi ${cls}` });
    card.append(el("span", { class: "label" }, label), el("strong", {}, value), el("span", { class: "sub" }, sub));
    box.append(card);
  }
}

function everyDay(from, to, days) {
  // A day without uploads is a zero bar, not a missing one: silence must show.
  const byDay = Object.fromEntries(days.map((d) => [d.day, d]));
  const out = [];
  for (let t = Date.parse(from + "T00:00:00Z"); t <= Date.parse(to + "T00:00:00Z") && out.length < 400; t += 86400000) {
    const day = new Date(t).toISOString().slice(0, 10);
    out.push(byDay[day] || { day, received: 0, accepted: 0, warned: 0, rejected: 0 });
  }
  return out;
}

function dayChart(days) {
  const box = $("chart-days");
  box.replaceChildren();
  if (!days.some((d) => d.received)) { box.append(el("p", { class: "empty" }, "本期无数据 · no data in this period")); return; }
  const W = 760, H = 240, L = 48, B = 28, T = 12;
  const max = Math.max(1, ...days.map((d) => d.received));
  const step = (W - L - 8) / days.length, bw = Math.max(4, Math.min(36, step * 0.7));
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "accepted and rejected per day" });
  const y = (v) => H - B - (v / max) * (H - B - T);
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((max * i) / 4), yy = y(v);
    s.append(svg("line", { x1: L, x2: W - 4, y1: yy, y2: yy, class: "grid" }), svg("text", { x: L - 6, y: yy + 4, class: "axis", "text-anchor": "end" }, num(v)));
  }
  days.forEach((d, i) => {
    const x = L + i * step + (step - bw) / 2;
    const clean = d.accepted - d.warned;
    let base = 0;
    for (const [n, cls, label] of [[clean, "ok", "合格"], [d.warned, "warn", "警告"], [d.rejected, "bad", "拒收"]]) {
      if (!n) continue;
      const r = svg("rect", { x, y: y(base + n), width: bw, height: y(base) - y(base + n), class: cls, rx: 2 });
      r.append(svg("title", {}, `${d.day} ${label} ${n}`));
      s.append(r);
      base += n;
    }
    if (days.length <= 16 || i % Math.ceil(days.length / 16) === 0)
      s.append(svg("text", { x: x + bw / 2, y: H - 8, class: "axis", "text-anchor": "middle" }, d.day.slice(5)));
  });
  box.append(s, legend([["ok", "合格 clean"], ["warn", "警告 warned"], ["bad", "拒收 rejected"]]));
}

function legend(items) {
  const l = el("div", { class: "legend" });
  for (const [cls, label] of items) { const i = el("span"); i.append(el("i", { class: cls }), document.createTextNode(label)); l.append(i); }
  return l;
}

function hbars(box, rows, fmt) {
  box.replaceChildren();
  if (!rows.length) { box.append(el("p", { class: "empty" }, "无 · none")); return; }
  const max = Math.max(1, ...rows.map((r) => r.value));
  const W = 520, rowH = 30, L = 130;
  const s = svg("svg", { viewBox: `0 0 ${W} ${rows.length * rowH + 4}`, role: "img" });
  rows.forEach((r, i) => {
    const y = i * rowH + 4, w = ((W - L - 60) * r.value) / max;
    s.append(svg("text", { x: L - 8, y: y + 17, class: "label", "text-anchor": "end" }, r.label));
    let x = L;
    for (const [v, cls] of r.parts) {
      const pw = ((W - L - 60) * v) / max;
      if (pw > 0) s.append(svg("rect", { x, y: y + 4, width: pw, height: 18, class: cls, rx: 3 }));
      x += pw;
    }
    s.append(svg("text", { x: L + w + 6, y: y + 17, class: "value" }, fmt(r)));
  });
  box.append(s);
}

function dimChart(hospitals) {
  const totals = Object.fromEntries(DIMS.map((d) => [d, { reject: 0, warn: 0 }]));
  for (const h of hospitals) for (const d of DIMS) {
    totals[d].reject += (h.dimensions[d] || {}).reject || 0;
    totals[d].warn += (h.dimensions[d] || {}).warn || 0;
  }
  const rows = DIMS.map((d) => ({ label: d, value: totals[d].reject + totals[d].warn, parts: [[totals[d].reject, "bad"], [totals[d].warn, "warn"]], r: totals[d] }));
  hbars($("chart-dims"), rows, (r) => `${num(r.r.reject)} / ${num(r.r.warn)}`);
  $("chart-dims").append(legend([["bad", "拒收 reject"], ["warn", "警告 warn"]]));
}

function rulesTable(rules) {
  const box = $("rules");
  box.replaceChildren();
  if (!rules.length) { box.append(el("p", { class: "empty" }, "无失败规则 · no failing rule")); return; }
  const t = el("table");
  t.append(row("th", ["规则 rule", "维度", "级别", "清单数", "占比", "示例 example"]));
  const max = Math.max(...rules.map((r) => r.records));
  for (const r of rules) {
    const tr = row("td", [r.rule, r.dimension, r.severity === "reject" ? "拒收" : "警告", num(r.records), pct(r.share), (r.examples[0] || "").slice(0, 18)]);
    tr.children[0].classList.add("mono");
    tr.children[5].classList.add("mono", "muted");
    const example = r.examples[0] || "";
    if (isOpsRole && example.startsWith("rejected:")) {  // opens in the message browser
      tr.children[5].classList.add("link");
      tr.children[5].title = "打开 open";
      tr.children[5].addEventListener("click", () => { $("browser").scrollIntoView(); openMessage(`/v1/ops/rejected/${example.slice(9)}`); });
    }
    const bar = el("div", { class: `bar ${r.severity === "reject" ? "bad" : "warn"}` });
    bar.style.width = `${Math.max(4, (60 * r.records) / max)}px`;
    tr.children[3].prepend(bar);
    t.append(tr);
  }
  box.append(t);
}

function row(cell, values) {
  const tr = el("tr");
  for (const v of values) tr.append(el(cell, {}, String(v)));
  return tr;
}

function league(hospitals) {
  const box = $("league");
  box.replaceChildren();
  if (!hospitals.length) { box.append(el("p", { class: "empty" }, "本期无医院上传 · no uploads")); return; }
  const sorted = [...hospitals].sort((a, b) => (a.pass_rate ?? 2) - (b.pass_rate ?? 2) || (a.timely_rate ?? 2) - (b.timely_rate ?? 2));
  const t = el("table", { class: "league" });
  t.append(row("th", ["#", "机构编码", "名称", "地市", "接收", "拒收", "规范率", "及时率", "时滞 p50", "p90", "最近上传"]));
  sorted.forEach((h, i) => {
    const tr = row("td", [i + 1, h.fixmedins_code, h.name || "", h.city, num(h.received), num(h.rejected), pct(h.pass_rate), pct(h.timely_rate), hours(h.lag_p50_h), hours(h.lag_p90_h), when(h.last_seen, false)]);
    tr.children[1].classList.add("mono");
    tr.children[6].classList.add("rate", level(h.pass_rate, 1, 0.95));
    tr.children[7].classList.add("rate", level(h.timely_rate, 1, 0.9));
    t.append(tr);
  });
  box.append(t);
}

function pipeline(items, depth) {
  const rows = items.map((p) => ({ label: `${p.worker}`, value: Number(p.lag), parts: [[Number(p.lag), Number(p.lag) > 1000 ? "bad" : "ok"]], topic: p.topic }));
  const box = $("pipeline");
  hbars(box, rows, (r) => `${num(r.value)} 条积压 · ${r.topic.replace("dip.", "")}`);
  if (depth !== null && depth !== undefined)
    box.append(el("p", { class: "muted" }, `拒收主题深度 rejected-topic depth: ${num(depth)}`));
}

function feedList(feeds) {
  const box = $("feeds");
  $("feeds-card").hidden = !feeds.length;
  box.replaceChildren();
  if (!feeds.length) return;
  const t = el("table", { class: "feeds" });
  const head = el("tr");
  for (const h of ["数据源 feed", "类型 kind", "机构 hospitals", "状态 state", "读取 read", "接收 accepted", "重复 duplicate", "拒收 rejected", "积压 backlog", "最近轮询 last poll", "最近错误 last error"])
    head.append(el("th", {}, h));
  t.append(head);
  for (const f of feeds) {
    const tr = el("tr", { class: "feed", "data-feed": f.name });
    const state = f.state === "failing" ? "poor" : f.state === "paused" ? "na" : "good";
    const error = f.last_error ? `${f.last_error}（自 since ${when(f.failing_since)}）` : "";
    tr.append(
      el("td", {}, f.name), el("td", {}, f.kind), el("td", {}, f.hospitals.join(", ")),
      el("td", { class: state }, f.state), el("td", {}, num(f.rows_read)), el("td", {}, num(f.accepted)),
      el("td", {}, num(f.duplicate)), el("td", {}, num(f.rejected)), el("td", {}, num(f.backlog_items)),
      el("td", {}, when(f.last_poll_at)), el("td", {}, error));
    t.append(tr);
  }
  box.append(t);
}

function alertList(alerts) {
  const box = $("alerts");
  box.replaceChildren();
  if (!alerts.length) { box.append(el("p", { class: "empty good" }, "无告警 · all clear")); return; }
  const ul = el("ul", { class: "alerts" });
  for (const a of alerts) {
    const li = el("li", { class: a.kind });
    li.append(el("span", { class: "tag" }, a.kind), el("span", {}, a.message), el("time", {}, when(a.raised_at, false)));
    ul.append(li);
  }
  box.append(ul);
}

// -- settlement (runs, simulations, special reviews): the latest of each, linked to the API --

const linked = (href, text) => el("a", { href }, text);
function linkRow(cells, attrs = {}) {
  const tr = el("tr", attrs);
  for (const c of cells) { const td = el("td", c.money ? { class: "money" } : {}); td.append(c.node || String(c.text ?? "—")); tr.append(td); }
  return tr;
}
function listInto(box, head, rows, empty) {
  box.replaceChildren();
  if (!rows.length) { box.append(el("p", { class: "empty" }, empty)); return; }
  const t = el("table", { class: "links" });
  t.append(row("th", head));
  for (const r of rows) t.append(r);
  box.append(t);
}
async function settlement(city) {
  const q = city ? `city=${encodeURIComponent(city)}&` : "";
  $("runs-link").href = `/v1/settlement/runs?${q}`;
  $("sims-link").href = `/v1/simulations?${q}`;
  $("reviews-link").href = `/v1/special-reviews?${q}status=open`;
  const parts = [
    ["runs", `/v1/settlement/runs?${q}limit=8`, (d) => listInto($("runs"), ["批次 run", "地市 city", "期间 period", "应付 payable", "时间 at"],
      d.runs.map((r) => linkRow([{ node: linked(r.lines_url, `#${r.run_id} ${r.kind} v${r.seq}`) }, { text: r.city }, { text: r.period },
        { text: r.totals?.payable ?? "—", money: true }, { text: when(r.created_at, false) }], { "data-run": r.run_id })), "尚无结算 · no runs yet")],
    ["sims", `/v1/simulations?${q}limit=8`, (d) => listInto($("sims"), ["测算 simulation", "地市 city", "年度 year", "差额 delta", "时间 at"],
      d.simulations.map((s) => linkRow([{ node: linked(s.lines_url, `#${s.sim_id} ${s.draft_version}`) }, { text: s.city }, { text: s.clearing_year },
        { text: s.delta, money: true }, { text: when(s.created_at, false) }], { "data-sim": s.sim_id })), "尚无测算 · no simulations yet")],
    ["reviews", `/v1/special-reviews?${q}status=open&limit=8`, (d) => listInto($("reviews"), ["申请 review", "病例 case", "年度 year", "申请时间 asked"],
      d.reviews.map((r) => linkRow([{ node: linked(`/v1/special-reviews/${r.review_id}`, `#${r.review_id}`) }, { text: r.case_key }, { text: r.clearing_year },
        { text: when(r.requested_at, false) }], { "data-review": r.review_id })), "无待审申请 · none open")],
  ];
  await Promise.all(parts.map(async ([id, url, draw]) => {
    try { draw(await getJSON(url)); } catch (e) { problem($(id), e); }
  }));
}

function query() {
  const q = new URLSearchParams();
  for (const k of ["from", "to", "city"]) if ($(k).value) q.set(k, $(k).value);
  return q;
}

async function load() {
  const q = query();
  const resp = await fetch(`/v1/quality/dashboard?${q}`, { credentials: "same-origin" });
  if (resp.status === 401) { location.href = "/ops/login"; return; }
  const data = await resp.json();
  if (!resp.ok) { $("kpis").replaceChildren(el("p", { class: "empty poor" }, data.errors?.[0]?.message || resp.statusText)); return; }
  $("from").value = data.from; $("to").value = data.to;
  $("period").textContent = `${data.from} — ${data.to}`;
  $("scope").textContent = data.scope.city ? `地市 ${data.scope.city}` : "全省 all cities";
  const csv = new URLSearchParams(q); csv.set("format", "csv"); csv.set("by", "hospital");
  $("csv").href = `/v1/quality/report?${csv}`;
  isOpsRole = data.scope.role === "ops";
  kpis(data); dayChart(everyDay(data.from, data.to, data.days)); dimChart(data.hospitals); rulesTable(data.rules);
  league(data.hospitals); pipeline(data.pipeline, data.rejected_depth); alertList(data.alerts); feedList(data.feeds || []);
  $("updated").textContent = "更新于 updated " + when(data.generated_at);
  $("browser").hidden = !isOpsRole;
  await settlement(data.scope.city);
  if (isOpsRole && !browserLoaded) { browserLoaded = true; await browse(); }
  document.body.dataset.ready = "1";
}

// -- the message browser (ops only) ---------------------------------------------------

let browserLoaded = false;
let isOpsRole = false;
let kind = "rejected";  // or "dead-letters"
let page = 1;

function moment(value) {
  // a datetime-local value is read as China Standard Time, and sent with that offset
  return value ? `${value.length === 16 ? value + ":00" : value}+08:00` : "";
}

function browseQuery() {
  const q = new URLSearchParams({ page: String(page), limit: "20" });
  const hospital = $("m-hospital").value.trim(), rule = $("m-rule").value.trim();
  if (hospital) q.set("hospital", hospital);
  if (kind === "rejected" && rule) q.set("rule", rule);
  if (kind === "dead-letters" && rule) q.set("worker", rule);
  if ($("m-since").value) q.set("since", moment($("m-since").value));
  if ($("m-until").value) q.set("until", moment($("m-until").value));
  return q;
}

async function getJSON(url) {
  const resp = await fetch(url, { credentials: "same-origin" });
  const data = await resp.json();
  if (!resp.ok) throw new Error(data.errors?.[0]?.message || resp.statusText);
  return data;
}

function problem(box, error) {
  box.replaceChildren(el("p", { class: "empty poor" }, String(error.message || error)));
}

async function browse() {
  const box = $("m-list");
  $("m-rule").placeholder = kind === "rejected" ? "规则 rule" : "worker";
  for (const b of document.querySelectorAll("#m-tabs button")) b.classList.toggle("active", b.dataset.kind === kind);
  let data;
  try { data = await getJSON(`/v1/ops/${kind}?${browseQuery()}`); } catch (e) { problem(box, e); return; }
  box.replaceChildren();
  if (!data.rows.length) box.append(el("p", { class: "empty" }, "无消息 · no messages"));
  else {
    const t = el("table", { class: "messages" });
    if (kind === "rejected") {
      t.append(row("th", ["接收时间 received (+08:00)", "机构编码", "地市", "规则 rules", "位置"]));
      for (const r of data.rows) {
        const tr = row("td", [when(r.received_at), r.fixmedins_code, r.city, r.rules.join(" "), r.id]);
        tr.dataset.path = `/v1/ops/rejected/${r.id}`;
        t.append(tr);
      }
    } else {
      t.append(row("th", ["时间 at (+08:00)", "worker", "主题 topic", "位置", "机构", "错误 error", "重放 replayed"]));
      for (const r of data.rows) {
        const tr = row("td", [when(r.at), r.worker, r.topic, `${r.partition}/${r.offset}`, r.fixmedins_code || "—", r.error, r.replayed_at ? when(r.replayed_at) : "—"]);
        tr.dataset.path = `/v1/ops/dead-letters/${r.worker}/${encodeURIComponent(r.topic)}/${r.partition}/${r.offset}`;
        t.append(tr);
      }
    }
    for (const tr of t.querySelectorAll("tr[data-path]")) tr.addEventListener("click", () => openMessage(tr.dataset.path));
    box.append(t);
  }
  $("m-page").textContent = `第 ${data.page} 页 page`;
  $("m-prev").disabled = data.page <= 1;
  $("m-next").disabled = !data.has_more;
  await auditList();
}

function findings(errors) {
  const t = el("table");
  t.append(row("th", ["规则 rule", "字段 field", "维度", "级别", "说明 message"]));
  for (const e of errors) t.append(row("td", [e.rule, e.field, e.dimension || "", e.severity, `${e.message} · ${e.message_en || ""}`]));
  return t;
}

async function openMessage(path) {
  const box = $("m-detail");
  let data;
  try { data = await getJSON(path); } catch (e) { problem(box, e); return; }
  box.replaceChildren();
  box.dataset.path = path;
  if (path.startsWith("/v1/ops/rejected/")) {
    box.append(el("h3", {}, `拒收清单 rejected list ${data.id} · ${data.fixmedins_code} · ${when(data.received_at)}`));
    box.append(findings(data.errors));
    box.append(el("h4", {}, "清单（个人信息已脱敏）document, personal fields masked"));
    box.append(el("pre", {}, JSON.stringify(data.document, null, 2)));
    return;
  }
  box.append(el("h3", {}, `死信 dead letter ${data.id} · ${when(data.at)}`));
  box.append(el("p", { class: "mono" }, `${data.error}`));
  const replayed = data.replayed_at ? `已重放 replayed ${when(data.replayed_at)} → ${data.replayed_to}` : "未重放 not replayed";
  const button = el("button", { type: "button", id: "m-replay", class: "action" }, "修复后重放 replay");
  button.disabled = Boolean(data.replayed_at) || data.message_gone || Boolean(data.message_unreadable);
  button.addEventListener("click", () => replay(path));
  box.append(el("p", {}, replayed), button);
  box.append(el("h4", {}, "消息（个人信息已脱敏）message, personal fields masked"));
  const shownMessage = data.message_unreadable ? `无法读取 · ${data.message_unreadable}`
    : data.message_gone ? "已不在 Kafka 中 · no longer in Kafka" : JSON.stringify(data.message, null, 2);
  box.append(el("pre", {}, shownMessage));
}

async function replay(path) {
  const resp = await fetch(`${path}/replay`, { method: "POST", credentials: "same-origin", headers: { "X-Dipgw-Ops": "1" } });
  const data = await resp.json();
  const note = resp.ok ? `${data.result} · ${when(data.audited_at)} · ${data.actor}` : (data.errors?.[0]?.message || resp.statusText);
  await openMessage(path);
  $("m-detail").prepend(el("p", { class: resp.ok ? "note good" : "note poor", id: "m-replay-result" }, note));
  await browse();
}

async function auditList() {
  const box = $("m-audit");
  let data;
  try { data = await getJSON("/v1/ops/audit?limit=10"); } catch (e) { problem(box, e); return; }
  box.replaceChildren();
  if (!data.rows.length) { box.append(el("p", { class: "empty" }, "无操作记录 · no actions yet")); return; }
  const t = el("table");
  t.append(row("th", ["时间 at (+08:00)", "操作人 actor", "操作", "对象 target", "结果 result"]));
  for (const a of data.rows) t.append(row("td", [when(a.at), a.actor, a.action, a.target, a.result]));
  box.append(t);
}

document.addEventListener("DOMContentLoaded", () => {
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  $("m-filters").addEventListener("submit", (e) => { e.preventDefault(); page = 1; browse(); });
  for (const b of document.querySelectorAll("#m-tabs button"))
    b.addEventListener("click", () => { kind = b.dataset.kind; page = 1; $("m-detail").replaceChildren(); browse(); });
  $("m-prev").addEventListener("click", () => { page = Math.max(1, page - 1); browse(); });
  $("m-next").addEventListener("click", () => { page += 1; browse(); });
  load();
  setInterval(load, 30000);
});
