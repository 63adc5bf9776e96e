// suanli dashboard: one ES module, no build step, no outside request.
// It polls the public aggregate JSON (/dashboard/api/*) and, once signed in, the /v1 API with
// the token kept in this tab's sessionStorage and sent as a Bearer header (never in a URL).
// The map and the charts are inline SVG drawn here.

const TOKEN_KEY = "suanli.token";
const POLL_MS = 2000;
const HISTORY_MS = 5000;
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

let session = null; // {name, admin, tenants: Map(id -> name)} once signed in

// -- small DOM helpers ----------------------------------------------------------------------

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  e.append(...kids.filter((k) => k !== null && k !== undefined));
  return e;
}

function svg(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(SVG_NS, tag);
  setAttrs(e, attrs);
  e.append(...kids.filter((k) => k !== null && k !== undefined));
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.setAttribute("class", v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
}

const fmtInt = (n) => Number(n).toLocaleString("en-US");
const fmtPct = (u) => `${Math.round(u * 100)}%`;
const fmtTime = (t) => (t ? new Date(t * 1000).toLocaleTimeString("en-GB") : "—");
const fmtGb = (gb) => (gb >= 1000 ? `${+(gb / 1000).toFixed(1)} TB` : `${+gb.toFixed(1)} GB`);

function fmtDur(s) {
  if (s === null || s === undefined || !isFinite(s)) return "—";
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} m`;
}

const clip = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const shortName = (name) => name.replace(/\s*\(.*$/, "").replace(/ cluster$/i, "");
const utilColour = (u) => `hsl(${Math.round(140 - 140 * Math.min(1, u))}, 65%, 45%)`;

function hueOf(s) {
  let h = 0;
  for (const ch of s) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

// -- talking to the service -----------------------------------------------------------------

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const r = await fetch(path, { headers, cache: "no-store" });
  if (!r.ok) {
    let msg = r.statusText;
    try { const b = await r.json(); msg = typeof b.error === "string" ? b.error : msg; } catch { /* not JSON */ }
    throw new HttpError(r.status, msg);
  }
  return r;
}

const getJson = async (path) => (await call(path)).json();

function status(text) {
  $("updated").textContent = text;
}

// -- signing in -----------------------------------------------------------------------------

async function identify() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) { session = null; return; }
  try {
    const usage = await getJson("/v1/usage");
    let admin = false;
    const tenants = new Map();
    try {
      for (const t of (await getJson("/v1/tenants")).tenants) tenants.set(t.id, t.name);
      admin = true;
    } catch (e) { if (!(e instanceof HttpError) || e.status !== 403) throw e; }
    session = { name: usage.tenant, admin, tenants };
  } catch (e) {
    if (e instanceof HttpError && e.status === 401) sessionStorage.removeItem(TOKEN_KEY);
    session = null;
    status(`sign-in failed: ${e.message}`);
  }
}

function showSession() {
  $("who").textContent = session ? `${session.name}${session.admin ? " (admin)" : ""}` : "public view";
  $("token").hidden = !!session;
  $("signin-btn").hidden = !!session;
  $("signout-btn").hidden = !session;
  document.body.classList.toggle("signed-in", !!session);
  document.body.classList.toggle("admin", !!session?.admin);
}

function wireSignIn(onChange) {
  $("signin").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    await identify();
    showSession();
    onChange();
  });
  $("signout-btn").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    session = null;
    showSession();
    onChange();
  });
}

// -- sortable tables ------------------------------------------------------------------------

const sortState = new Map(); // table id -> {key, dir}

function renderRows(table, rows) {
  table._rows = rows;
  const st = sortState.get(table.id);
  const sorted = [...rows];
  if (st) {
    sorted.sort((a, b) => {
      const x = a.sort[st.key], y = b.sort[st.key];
      const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return c * st.dir;
    });
  }
  table.tBodies[0].replaceChildren(...sorted.map((r) => el("tr", r.attrs ?? {}, ...r.cells)));
}

function makeSortable(table) {
  for (const th of table.tHead.rows[0].cells) {
    th.addEventListener("click", () => {
      const prev = sortState.get(table.id);
      const dir = prev?.key === th.dataset.key ? -prev.dir : 1;
      sortState.set(table.id, { key: th.dataset.key, dir });
      for (const o of table.tHead.rows[0].cells) o.classList.remove("asc", "desc");
      th.classList.add(dir > 0 ? "asc" : "desc");
      renderRows(table, table._rows ?? []);
    });
  }
}

const td = (text, cls) => el("td", { class: cls, text });

// -- the map --------------------------------------------------------------------------------

let outline = null;

function projection(net) {
  const cs = net.centers;
  const ob = outline.bbox;
  const inside = cs.some((c) => c.lon >= ob[0] && c.lon <= ob[2] && c.lat >= ob[1] && c.lat <= ob[3]);
  let [x0, y0, x1, y1] = inside || !cs.length ? ob : [180, 90, -180, -90];
  for (const c of cs) {
    x0 = Math.min(x0, c.lon - 2); x1 = Math.max(x1, c.lon + 2);
    y0 = Math.min(y0, c.lat - 2); y1 = Math.max(y1, c.lat + 2);
  }
  const k = Math.cos(((y0 + y1) / 2) * Math.PI / 180);
  const W = 1000, s = W / ((x1 - x0) * k);
  return { W, H: Math.round((y1 - y0) * s), p: (lon, lat) => [(lon - x0) * k * s, (y1 - lat) * s] };
}

async function loadOutline() {
  const o = await (await fetch("/dashboard/static/map/china.json")).json();
  const pts = o.rings.flat();
  o.bbox = [Math.min(...pts.map((p) => p[0])), Math.min(...pts.map((p) => p[1])),
            Math.max(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[1]))];
  outline = o;
}

function drawMap(net) {
  const map = $("map");
  const { W, H, p } = projection(net);
  map.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const land = outline.rings.map((ring) => svg("path", {
    class: "land",
    d: "M" + ring.map(([lon, lat]) => p(lon, lat).map((v) => v.toFixed(1)).join(",")).join("L") + "Z",
  }));
  const links = net.links.filter((l) => l.from && l.to).map((l) => {
    const [ax, ay] = p(l.from.lon, l.from.lat), [bx, by] = p(l.to.lon, l.to.lat);
    const w = 1 + 1.6 * Math.log2(Math.max(1, l.bandwidth_gbps / 10));
    return svg("g", { "data-link": `${l.a}~${l.b}` },
      svg("line", { class: "link", x1: ax, y1: ay, x2: bx, y2: by, "stroke-width": w.toFixed(1) },
        svg("title", { text: `${l.a} ↔ ${l.b}: ${l.bandwidth_gbps} Gb/s, ${l.latency_ms} ms` })),
      Math.hypot(bx - ax, by - ay) < 90 ? null :
        svg("text", { class: "linklabel", x: (ax + bx) / 2, y: (ay + by) / 2, "text-anchor": "middle",
                      text: `${l.bandwidth_gbps} Gb/s` }));
  });
  const maxChips = Math.max(1, ...net.centers.map(chipsOf));
  const radius = (c) => 5 + 17 * Math.sqrt(chipsOf(c) / maxChips);
  const spots = net.centers.map((c) => [...p(c.lon, c.lat), radius(c)]);
  const crowdedRight = (x, y) => spots.some(([ox, oy]) => ox > x + 1 && ox - x < 110 && Math.abs(oy - y) < 24);
  const centers = [...net.centers].sort((a, b) => chipsOf(b) - chipsOf(a)).map((c) => {
    const [x, y] = p(c.lon, c.lat);
    const chips = chipsOf(c), used = usedOf(c), u = chips ? used / chips : 0;
    const r = radius(c);
    const left = crowdedRight(x, y);
    const pools = c.pools.map((q) => `${q.id} ${q.accelerator}: ${q.chips_used ?? 0}/${q.chips}`).join("\n");
    return svg("g", { class: "centerg", "data-center": c.id, "data-util": u.toFixed(3) },
      svg("circle", { class: "center", cx: x, cy: y, r: r.toFixed(1), fill: utilColour(u) },
        svg("title", { text: `${c.name}\n${c.region}\n${fmtInt(used)} of ${fmtInt(chips)} chips used (${fmtPct(u)})\n${pools}` })),
      svg("text", { class: "centerlabel", x: left ? x - r - 3 : x + r + 3, y: y + 4,
                    "text-anchor": left ? "end" : "start", text: clip(shortName(c.name), 22) }));
  });
  const at = new Map(net.centers.map((c) => [c.id, radius(c)]));
  const perPlace = new Map();
  const datasets = net.datasets.filter((d) => d.at).map((d) => {
    const i = perPlace.get(d.location) ?? 0;
    perPlace.set(d.location, i + 1);
    const [x, y] = p(d.at.lon, d.at.lat);
    const dy = (at.get(d.location) ?? 6) + 12 + 13 * i;
    return svg("g", { class: "datasetg", "data-dataset": d.name },
      svg("rect", { class: "dataset", x: x - 4, y: y + dy - 8, width: 8, height: 8 },
        svg("title", { text: `dataset ${d.name}: ${fmtGb(d.size_gb)} at ${d.location}` })),
      svg("text", { class: "datalabel", x: x + 7, y: y + dy, text: `${d.name} ${fmtGb(d.size_gb)}` }));
  });
  map.replaceChildren(svg("g", {}, ...land), svg("g", {}, ...links), svg("g", {}, ...centers),
                      svg("g", {}, ...datasets));
}

const chipsOf = (c) => c.pools.reduce((n, q) => n + q.chips, 0);
const usedOf = (c) => c.pools.reduce((n, q) => n + (q.chips_used ?? 0), 0);

// -- network figures and pools ---------------------------------------------------------------

function drawStats(net) {
  const chips = net.centers.reduce((n, c) => n + chipsOf(c), 0);
  const used = net.centers.reduce((n, c) => n + usedOf(c), 0);
  const js = net.jobs_by_state;
  const sum = (...ks) => ks.reduce((n, k) => n + (js[k] ?? 0), 0);
  const stat = (v, label, id) => el("div", { class: "stat", id }, el("b", { text: v }), el("span", { text: label }));
  $("stats").replaceChildren(
    stat(fmtInt(net.centers.length), "centers", "stat-centers"),
    stat(fmtInt(net.links.length), "WAN links"),
    stat(fmtInt(chips), "chips", "stat-chips"),
    stat(`${fmtInt(used)} · ${fmtPct(chips ? used / chips : 0)}`, "chips in use"),
    stat(fmtInt(sum("pending", "queued", "preempted")), "jobs waiting", "stat-waiting"),
    stat(fmtInt(sum("starting", "running", "checkpointing")), "jobs running", "stat-running"),
    stat(fmtInt(sum("succeeded")), "jobs done"),
    stat(fmtInt(sum("failed", "cancelled")), "failed or cancelled"),
  );
  $("netdesc").textContent = `${net.name}${net.illustrative ? " (illustrative)" : ""}` +
    (net.scheduler ? "" : " · no scheduler running");
}

function drawPools(net) {
  const rows = [];
  for (const c of net.centers) {
    for (const q of c.pools) {
      const used = q.chips_used ?? 0, u = q.utilisation ?? 0;
      const price = Number(q.price_per_chip_hour), spot = q.spot_price_per_chip_hour;
      rows.push({
        attrs: { "data-pool": q.pool_id },
        sort: { center: c.id, pool: q.id, accelerator: q.accelerator, chips: q.chips, used,
                free: q.chips - used, util: u, price, spot: spot === null ? -1 : Number(spot),
                power: c.electricity_price_per_kwh, pue: c.pue, carbon: c.carbon_g_per_kwh },
        cells: [td(shortName(c.name)), td(q.id), td(q.accelerator), td(fmtInt(q.chips), "num"),
                td(fmtInt(used), "num"), td(fmtInt(q.chips - used), "num"),
                el("td", { class: "num" }, bar(u), fmtPct(u)),
                td(`${price.toFixed(2)} ${net.currency}`, "num"),
                td(spot === null ? "—" : Number(spot).toFixed(2), "num"),
                td(c.electricity_price_per_kwh.toFixed(2), "num"), td(c.pue.toFixed(2), "num"),
                td(fmtInt(c.carbon_g_per_kwh), "num")],
      });
    }
  }
  renderRows($("pools"), rows);
}

function bar(frac) {
  const fill = el("i");
  fill.style.width = `${Math.round(Math.min(1, Math.max(0, frac)) * 100)}%`;
  return el("span", { class: "bar" }, fill);
}

// -- jobs -----------------------------------------------------------------------------------

function progressOf(j, now) {
  if (j.state === "succeeded") return 1;
  const est = j.estimate?.run_s;
  if (j.started_at && est && !TERMINAL.has(j.state)) return Math.min(0.99, (now - j.started_at) / est);
  if (j.run_s && est) return Math.min(1, j.run_s / est);
  return 0;
}

function waitOf(j, now) {
  if (j.started_at) return j.started_at - j.submitted_at;
  return (j.finished_at ?? now) - j.submitted_at;
}

function costOf(j, progress) {
  if (TERMINAL.has(j.state) || (j.charged !== null && Number(j.charged) > 0)) return Number(j.charged ?? 0);
  if (j.started_at && j.estimate?.cost) return Number(j.estimate.cost) * progress;
  return 0;
}

// "wuhu/l20 L20×1"; a mixed-chip gang: "horinger H800×16 + 910B×16"; staging says so.
function chipsText(p) {
  if (p.parts?.length) return p.parts.map((q) => `${q.accelerator}×${q.count}`).join(" + ");
  return `${p.accelerator}×${p.count}`;
}

function placementText(j) {
  const p = j.placement;
  if (p) {
    const where = p.parts?.length ? p.center : `${p.center}/${p.pool}`;
    return `${where} ${chipsText(p)}` + (j.state === "staging" ? " (moving data)" : "");
  }
  const e = j.estimate ?? {};
  return e.accelerator ? `planned ${e.accelerator}×${e.count}` : "—";
}

function drawJobs(jobs, currency) {
  const now = Date.now() / 1000;
  const rows = jobs.map((j) => {
    const prog = progressOf(j, now), wait = waitOf(j, now), cost = costOf(j, prog);
    const tenant = session?.tenants.get(j.tenant_id) ?? String(j.tenant_id);
    return {
      attrs: { "data-job": j.id, "data-state": j.state },
      sort: { id: j.id, name: j.name, tenant, state: j.state, placement: placementText(j),
              progress: prog, wait, cost },
      cells: [el("td", { class: "num" }, el("a", { href: `/dashboard/jobs/${j.id}`, text: `#${j.id}` })),
              td(j.name), td(tenant, "admin-only"),
              el("td", {}, el("span", { class: `state ${j.state}`, text: j.state })),
              td(placementText(j)), el("td", { class: "num" }, bar(prog), fmtPct(prog)),
              td(fmtDur(wait), "num"),
              td(`${TERMINAL.has(j.state) ? "" : "≈ "}${cost.toFixed(2)} ${currency}`, "num")],
    };
  });
  renderRows($("jobs"), rows);
  $("jobs-empty").hidden = jobs.length > 0;
  $("jobs-scope").textContent = session.admin ? "every tenant" : `of ${session.name}`;
}

async function drawAccount() {
  const u = await getJson("/v1/usage");
  const items = [["tenant", u.tenant], ["balance", `${u.balance} ${u.currency}`],
                 ["reserved", `${u.reserved} ${u.currency}`], ["spent", `${u.spent} ${u.currency}`],
                 ["granted", `${u.granted} ${u.currency}`],
                 ["jobs", Object.entries(u.jobs).map(([k, v]) => `${v} ${k}`).join(", ") || "none"]];
  try {
    const v = await getJson("/v1/vouchers");
    const list = v.vouchers ?? [];
    items.push(["vouchers", list.length ? list.map((x) => `${x.remaining ?? x.amount ?? ""} ${x.code ?? x.id ?? ""}`.trim()).join(", ") : "none"]);
  } catch { /* this service has no vouchers */ }
  $("account-body").replaceChildren(...items.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  $("spend-currency").textContent = u.currency;
}

// -- charts ---------------------------------------------------------------------------------

function lineChart(target, series, { yMax, yFmt, empty }) {
  const W = 600, H = 220, L = 46, R = 10, T = 10, B = 24;
  const pts = series.flatMap((s) => s.points);
  if (pts.length < 2) {
    target.replaceChildren(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", text: empty }));
    return;
  }
  const t0 = Math.min(...pts.map((q) => q[0])), t1 = Math.max(...pts.map((q) => q[0]));
  const top = yMax ?? Math.max(1, ...pts.map((q) => q[1]));
  const x = (t) => L + ((t - t0) / Math.max(1e-9, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const kids = [
    svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
    svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
    svg("text", { x: L - 4, y: T + 8, "text-anchor": "end", text: yFmt(top) }),
    svg("text", { x: L - 4, y: H - B, "text-anchor": "end", text: yFmt(0) }),
    svg("text", { x: L, y: H - 6, text: fmtTime(t0) }),
    svg("text", { x: W - R, y: H - 6, "text-anchor": "end", text: fmtTime(t1) }),
  ];
  for (const s of series) {
    if (!s.points.length) continue;
    kids.push(svg("polyline", {
      class: "series", stroke: s.colour, "data-series": s.name,
      points: s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" "),
    }, svg("title", { text: s.name })));
  }
  const legend = series.filter((s) => s.legend);
  legend.forEach((s, i) => {
    const t = svg("text", { x: L + 8 + 130 * (i % 4), y: T + 12 + 13 * Math.floor(i / 4), text: s.name });
    t.style.fill = s.colour; // over the stylesheet's grey for chart text
    kids.push(t);
  });
  target.replaceChildren(...kids);
}

async function drawHistory() {
  const h = await (await fetch("/dashboard/api/history", { cache: "no-store" })).json();
  const pools = new Map();
  for (const s of h.samples) {
    for (const [p, v] of Object.entries(s.pools)) {
      if (!pools.has(p)) pools.set(p, []);
      pools.get(p).push([s.at, v.chips ? v.chips_used / v.chips : 0]);
    }
  }
  const util = [...pools].map(([p, points]) => ({
    name: p, points, colour: `hsl(${hueOf(p)}, 60%, 45%)`, peak: Math.max(...points.map((q) => q[1])),
  })).sort((a, b) => b.peak - a.peak);
  util.slice(0, 4).forEach((s) => { s.legend = s.peak > 0; });
  lineChart($("chart-util"), util, { yMax: 1, yFmt: fmtPct, empty: "collecting samples…" });
  lineChart($("chart-queue"), [
    { name: "waiting", colour: "#d97706", legend: true, points: h.samples.map((s) => [s.at, s.queued_jobs]) },
    { name: "running", colour: "#1f6feb", legend: true, points: h.samples.map((s) => [s.at, s.running_jobs]) },
  ], { yFmt: fmtInt, empty: "collecting samples…" });
}

async function drawSpend() {
  const entries = (await getJson("/v1/ledger?limit=5000")).entries.sort((a, b) => a.at - b.at);
  let total = 0;
  const points = entries.length ? [[entries[0].at, 0]] : [];
  for (const e of entries) {
    if (e.kind === "settle") points.push([e.at, (total += -Number(e.amount))]);
  }
  if (points.length) points.push([Date.now() / 1000, total]);
  lineChart($("chart-spend"), [{ name: "spent", colour: "#7c3aed", points }],
            { yMax: Math.max(0.01, total), yFmt: (v) => v.toFixed(2), empty: "nothing spent yet" });
}

// -- pages ----------------------------------------------------------------------------------

async function indexTick() {
  const net = await (await fetch("/dashboard/api/network", { cache: "no-store" })).json();
  drawMap(net);
  drawStats(net);
  drawPools(net);
  $("jobs-card").hidden = !session;
  $("account").hidden = !session;
  $("spend-card").hidden = !session;
  if (session) {
    const q = session.admin ? "/v1/jobs?limit=200&all_tenants=true" : "/v1/jobs?limit=200";
    drawJobs((await getJson(q)).jobs, net.currency);
  }
}

async function indexSlowTick() {
  await drawHistory();
  if (session?.admin) {  // tenants made since sign-in get their names in the jobs table
    for (const t of (await getJson("/v1/tenants")).tenants) session.tenants.set(t.id, t.name);
  }
  if (session) {
    await drawAccount();
    await drawSpend();
  }
}

function every(ms, fn) {
  const run = async () => {
    try {
      await fn();
      status(`updated ${new Date().toLocaleTimeString("en-GB")}`);
    } catch (e) {
      status(`update failed: ${e.message}`);
    }
    setTimeout(run, ms);
  };
  return run();
}

async function indexPage() {
  makeSortable($("pools"));
  makeSortable($("jobs"));
  await loadOutline();
  wireSignIn(() => { indexTick().catch(() => {}); indexSlowTick().catch(() => {}); });
  every(POLL_MS, indexTick);
  every(HISTORY_MS, indexSlowTick);
}

function jobPage() {
  const id = Number(document.body.dataset.job);
  let offset = 0, logDone = false;
  const reset = () => { offset = 0; logDone = false; $("job-log").textContent = ""; };
  wireSignIn(reset);
  every(POLL_MS, async () => {
    $("job-signin").hidden = !!session;
    if (!session) return;
    const j = await getJson(`/v1/jobs/${id}`);
    $("job-name").textContent = j.name;
    $("job-state").textContent = j.state;
    $("job-state").className = `state ${j.state}`;
    document.body.dataset.state = j.state;
    const now = Date.now() / 1000, prog = progressOf(j, now);
    const spec = j.spec ?? {};
    const facts = [["tenant", session.admin ? session.tenants.get(j.tenant_id) ?? j.tenant_id : session.name], ["state", j.state],
                   ["reason", j.reason ?? "—"], ["submitted", fmtTime(j.submitted_at)],
                   ["started", fmtTime(j.started_at)], ["finished", fmtTime(j.finished_at)],
                   ["waited", fmtDur(waitOf(j, now))], ["progress", fmtPct(prog)],
                   ["reserved", j.reserved ?? "—"], ["charged", j.charged ?? "—"],
                   ["retries", `${j.retries} of ${j.max_retries}`], ["model", spec.model ?? "—"]];
    $("job-body").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
    const e = j.estimate ?? {}, p = j.placement;
    renderRows($("job-placement"), [
      { cells: [td("planned"), td("—"), td(e.accelerator ? `${e.accelerator} × ${e.count}` : "—"),
                td(fmtDur(e.run_s)), td(e.cost ?? "—")] },
      { attrs: { "data-actual": p ? "placed" : "none" },
        cells: [td("actual"), td(p ? `${p.center}/${p.pool}` : "not placed yet"),
                td(p ? chipsText(p) : "—"), td(fmtDur(j.run_s)), td(j.charged ?? "—")] },
    ]);
    const evs = (await getJson(`/v1/jobs/${id}/events`)).events;
    renderRows($("job-events"), evs.map((ev) => ({
      attrs: { "data-event": ev.new },
      cells: [td(fmtTime(ev.at)), td(ev.old ?? "—"), td(ev.new), td(ev.reason ?? ""),
              td(ev.placement ? (typeof ev.placement === "string" ? ev.placement : JSON.stringify(ev.placement)) : "")],
    })));
    if (!logDone) {
      const r = await call(`/v1/jobs/${id}/logs?offset=${offset}`);
      const text = await r.text();
      offset = Number(r.headers.get("X-Next-Offset") ?? offset);
      if (text) $("job-log").append(text);
      logDone = !text && TERMINAL.has(r.headers.get("X-Job-State"));
      $("log-state").textContent = logDone ? "complete" : "following";
    }
  });
}

async function main() {
  await identify();
  showSession();
  if (document.body.dataset.page === "job") jobPage();
  else await indexPage();
}

main();
