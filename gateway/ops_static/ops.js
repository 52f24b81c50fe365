// The /ops dashboard: one call to /v1/quality/dashboard, charts drawn as plain SVG.
// No library, no CDN: the page works on a network with no internet.
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
    const tr = row("td", [i + 1, h.fixmedins_code, h.name || "", h.city, num(h.received), num(h.rejected), pct(h.pass_rate), pct(h.timely_rate), hours(h.lag_p50_h), hours(h.lag_p90_h), (h.last_seen || "").replace("T", " ").slice(0, 16)]);
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

function alertList(alerts) {
  const box = $("alerts");
  box.replaceChildren();
  if (!alerts.length) { box.append(el("p", { class: "empty good" }, "无告警 · all clear")); return; }
  const ul = el("ul", { class: "alerts" });
  for (const a of alerts) {
    const li = el("li", { class: a.kind });
    li.append(el("span", { class: "tag" }, a.kind), el("span", {}, a.message), el("time", {}, a.raised_at.replace("T", " ").slice(0, 16)));
    ul.append(li);
  }
  box.append(ul);
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
  kpis(data); dayChart(everyDay(data.from, data.to, data.days)); dimChart(data.hospitals); rulesTable(data.rules);
  league(data.hospitals); pipeline(data.pipeline, data.rejected_depth); alertList(data.alerts);
  $("updated").textContent = "更新于 " + new Date().toLocaleString("zh-CN");
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", () => {
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
  setInterval(load, 30000);
});
