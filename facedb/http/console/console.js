// facedb console: a small page over the HTTP API (no build step, no external scripts).
// Every value from the server is put into the page as text (textContent), never as HTML.
"use strict";

const state = { key: "", caller: null, gallery: null, pageToken: "", enrollFiles: [] };
const $ = (selector) => document.querySelector(selector);
const enc = encodeURIComponent;
const RANK = { search: 0, enroll: 1, admin: 2 };

class ApiError extends Error {
  constructor(code, status, message) {
    super(`${status || code}: ${message}`);
    this.code = code;
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { "x-api-key": state.key };
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = data.error || {};
    throw new ApiError(response.status, error.status, error.message || response.statusText);
  }
  return data;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("data-")) node.setAttribute(name, value);
    else node[name] = value;
  }
  node.append(...children.map((c) => (typeof c === "number" ? String(c) : c)));
  return node;
}

function say(text, isError = false) {
  $("#status").textContent = text;
  $("#status").className = isError ? "error" : "";
}

function guarded(action) {
  return async (...args) => {
    say("");
    try {
      await action(...args);
    } catch (error) {
      say(error.message, true);
    }
  };
}

const canEnroll = () => RANK[state.caller.role] >= RANK.enroll;
const fixed = (value) => (value === null || value === undefined ? "" : Number(value).toFixed(3));

// ------------------------------------------------------------------ sign in

async function signIn(key) {
  state.key = key;
  try {
    state.caller = await api("GET", "/v1/me");
  } catch (error) {
    state.key = "";
    $("#login-error").textContent = error.message;
    return;
  }
  sessionStorage.setItem("facedb-key", key);
  const c = state.caller;
  $("#who").textContent =
    `${c.role} key ${c.key_id} · galleries: ${c.galleries.join(", ")}` +
    (c.view_crops ? " · may view face crops" : " · face crops hidden");
  $("#login").hidden = true;
  $("#main").hidden = false;
  $("#sign-out").hidden = false;
  $("#login-error").textContent = "";
  for (const tab of document.querySelectorAll(".needs-enroll")) tab.hidden = !canEnroll();
  const allGalleries = c.galleries.includes("*");
  for (const part of document.querySelectorAll(".needs-admin")) {
    part.hidden = !(c.role === "admin" && allGalleries);
  }
  await loadGalleries();
}

function signOut() {
  sessionStorage.removeItem("facedb-key");
  location.reload();
}

// ---------------------------------------------------------------- galleries

async function loadGalleries() {
  const { galleries } = await api("GET", "/v1/galleries");
  const list = $("#gallery-list");
  list.replaceChildren();
  for (const g of galleries) {
    const button = el(
      "button",
      { class: "gallery", "data-name": g.name, onclick: guarded(() => openGallery(g.name)) },
      g.name,
      el("br"),
      el("span", { class: "count" }, `${g.identity_count} identities · ${g.face_count} faces`),
    );
    if (g.name === state.gallery) button.classList.add("active");
    list.append(el("li", {}, button));
  }
  if (!galleries.length) list.append(el("li", { class: "muted" }, "no galleries for this key"));
}

async function createGallery() {
  const name = $("#new-gallery").value.trim();
  if (!name) throw new Error("enter the new gallery's name");
  await api("POST", "/v1/galleries", { name });
  $("#new-gallery").value = "";
  say(`created gallery ${name}`);
  await loadGalleries();
  await openGallery(name);
}

async function openGallery(name) {
  state.gallery = name;
  const g = await api("GET", `/v1/galleries/${enc(name)}`);
  $("#gallery-view").hidden = false;
  $("#gallery-title").textContent = g.name;
  $("#gallery-facts").textContent =
    `${g.model.name} (dim ${g.model.dim}) · identify ≥ ${fixed(g.thresholds.identify)} · ` +
    `verify ≥ ${fixed(g.thresholds.verify)} · crops ${g.store_crops ? "stored" : "not stored"}`;
  for (const b of document.querySelectorAll("#gallery-list button")) {
    b.classList.toggle("active", b.dataset.name === name);
  }
  showTab("identities");
  await loadIdentities(true);
}

function showTab(name) {
  for (const body of document.querySelectorAll(".tab-body")) body.hidden = body.id !== `tab-${name}`;
  for (const tab of document.querySelectorAll(".tab")) {
    tab.classList.toggle("active", tab.dataset.tab === name);
  }
}

// --------------------------------------------------------------- identities

async function loadIdentities(reset) {
  if (reset) {
    state.pageToken = "";
    $("#identities").replaceChildren();
  }
  const path = `/v1/galleries/${enc(state.gallery)}/identities?page_size=24&page_token=${enc(state.pageToken)}`;
  const page = await api("GET", path);
  for (const identity of page.identities) $("#identities").append(identityCard(identity));
  state.pageToken = page.next_page_token;
  $("#more-identities").hidden = !state.pageToken;
  if (reset && !page.identities.length) {
    $("#identities").append(el("p", { class: "muted" }, "no identities in this gallery yet"));
  }
}

function identityCard(identity) {
  const crops = el("div", { class: "crops" });
  if (state.caller.view_crops) {
    for (const faceId of identity.face_ids) crops.append(cropImage(faceId));
  } else {
    crops.append(el("p", { class: "muted" }, "face crops hidden: this key has no view_crops permission"));
  }
  const faces = identity.face_ids.length;
  const card = el(
    "article",
    { class: "identity", "data-id": identity.external_id },
    el("h3", {}, identity.display_name || identity.external_id),
    el("p", { class: "muted" }, `${identity.external_id} · ${faces} face${faces === 1 ? "" : "s"}`),
    crops,
  );
  if (canEnroll()) {
    card.append(
      el("button", { class: "delete danger", onclick: guarded(() => deleteIdentity(identity, card)) }, "Delete"),
    );
  }
  return card;
}

function cropImage(faceId) {
  const image = el("img", { alt: `face ${faceId}`, width: 56, height: 56 });
  image.dataset.faceId = faceId;
  const path = `/v1/galleries/${enc(state.gallery)}/faces/${faceId}/crop`;
  fetch(path, { headers: { "x-api-key": state.key } })
    .then((response) => (response.ok ? response.blob() : Promise.reject(new Error(response.statusText))))
    .then((blob) => {
      image.src = URL.createObjectURL(blob);
    })
    .catch(() => {
      image.alt = `face ${faceId}: no stored crop`;
    });
  return image;
}

async function deleteIdentity(identity, card) {
  const faces = identity.face_ids.length;
  const question = `Delete ${identity.external_id} and their ${faces} face(s)? This cannot be undone.`;
  if (!window.confirm(question)) return;
  const result = await api("DELETE", `/v1/galleries/${enc(state.gallery)}/identities/${enc(identity.external_id)}`);
  card.remove();
  say(`deleted ${identity.external_id} (${result.faces_removed} faces removed)`);
  await loadGalleries();
}

// --------------------------------------------------------------- enrollment

function queueForEnroll(files) {
  for (const file of files) {
    if (!file.type.startsWith("image/")) continue;
    state.enrollFiles.push(file);
    const thumb = el("img", { alt: file.name, title: file.name, src: URL.createObjectURL(file) });
    $("#enroll-queue").append(el("li", {}, thumb));
  }
  say(`${state.enrollFiles.length} photo(s) ready to enroll`);
}

async function enroll() {
  const externalId = $("#enroll-id").value.trim();
  if (!externalId) throw new Error("enter the external id of the person first");
  if (!state.enrollFiles.length) throw new Error("drop at least one photo first");
  const form = new FormData();
  form.append("external_id", externalId);
  form.append("display_name", $("#enroll-name").value.trim());
  for (const file of state.enrollFiles) form.append("images", file, file.name);
  const result = await api("POST", `/v1/galleries/${enc(state.gallery)}/enroll`, form);
  const rows = result.outcomes.map((outcome) => outcomeRow(outcome, state.enrollFiles[outcome.index]));
  $("#enroll-results tbody").replaceChildren(...rows);
  $("#enroll-results").hidden = false;
  const accepted = result.outcomes.filter((o) => o.accepted).length;
  $("#enroll-summary").textContent =
    `${externalId}: ${result.created ? "created" : "updated"}; ${accepted} of ${result.outcomes.length} photos accepted`;
  state.enrollFiles = [];
  $("#enroll-queue").replaceChildren();
  await loadGalleries();
  await loadIdentities(true);
}

function outcomeRow(outcome, file) {
  const refusal = outcome.rejection || {};
  return el(
    "tr",
    { class: outcome.accepted ? "accepted" : "refused" },
    el("td", {}, outcome.image_name || (file ? file.name : `photo ${outcome.index + 1}`)),
    el("td", {}, outcome.accepted ? `accepted (face ${outcome.face_id})` : "refused"),
    el("td", {}, refusal.reason || ""),
    el("td", {}, fixed(refusal.value)),
    el("td", {}, fixed(refusal.threshold)),
    el("td", {}, refusal.message || ""),
    el("td", {}, boxText(outcome.box)),
  );
}

// The face the server enrolled or refused, in the photo's pixels.
function boxText(box) {
  if (!box) return "";
  const [x1, y1, x2, y2] = [box.x1, box.y1, box.x2, box.y2].map(Math.round);
  return `(${x1}, ${y1})–(${x2}, ${y2})`;
}

// ------------------------------------------------------------------- search

async function drawBoxes(canvas, file, boxes) {
  const image = new Image();
  image.src = URL.createObjectURL(file);
  await image.decode();
  const scale = Math.min(1, 560 / image.naturalWidth);
  canvas.width = Math.round(image.naturalWidth * scale);
  canvas.height = Math.round(image.naturalHeight * scale);
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  context.lineWidth = 3;
  context.font = "bold 14px system-ui, sans-serif";
  for (const { box, label, good } of boxes) {
    const [x, y] = [box.x1 * scale, box.y1 * scale];
    context.strokeStyle = context.fillStyle = good ? "#1fd65f" : "#ff4136";
    context.strokeRect(x, y, (box.x2 - box.x1) * scale, (box.y2 - box.y1) * scale);
    const textX = Math.max(0, Math.min(x + 2, canvas.width - context.measureText(label).width - 2));
    context.fillText(label, textX, Math.max(14, y - 4));
  }
  canvas.dataset.boxes = String(boxes.length);
}

async function identify() {
  const file = $("#identify-file").files[0];
  if (!file) throw new Error("choose a photo to identify");
  const form = new FormData();
  form.append("image", file, file.name);
  form.append("top_k", $("#identify-top-k").value || "5");
  form.append("all_faces", $("#identify-all").checked ? "true" : "false");
  const result = await api("POST", `/v1/galleries/${enc(state.gallery)}/identify`, form);
  $("#identify-threshold").textContent =
    `${result.faces.length} face(s) · threshold ${fixed(result.threshold)} (cosine similarity)`;
  const boxes = result.faces.map((face, n) => {
    const best = face.candidates[0];
    const label = `${n + 1}: ${best ? `${best.external_id} ${fixed(best.score)}` : face.rejection ? face.rejection.reason : "no match"}`;
    return { box: face.box, label, good: Boolean(best) };
  });
  await drawBoxes($("#identify-canvas"), file, boxes);
  $("#identify-results").replaceChildren(...result.faces.map(probeFace));
}

function probeFace(face, n) {
  const title = el("h3", {}, `Face ${n + 1} (detector ${fixed(face.detection_score)})`);
  if (face.rejection) {
    const r = face.rejection;
    return el("div", { class: "probe" }, title, el("p", { class: "no-match" },
      `refused: ${r.reason} ${fixed(r.value)} (threshold ${fixed(r.threshold)}): ${r.message}`));
  }
  if (!face.candidates.length) return el("div", { class: "probe" }, title, el("p", { class: "no-match" }, "no match"));
  const rows = face.candidates.map((c) =>
    el("tr", { class: "candidate" }, el("td", {}, c.external_id), el("td", {}, c.display_name || ""), el("td", {}, fixed(c.score))),
  );
  const head = el("tr", {}, el("th", {}, "external id"), el("th", {}, "name"), el("th", {}, "score"));
  return el("div", { class: "probe" }, title, el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
}

async function verify() {
  const probe = $("#verify-probe").files[0];
  if (!probe) throw new Error("choose the photo to verify");
  const mode = document.querySelector("input[name=verify-mode]:checked").value;
  const form = new FormData();
  form.append("image", probe, probe.name);
  const reference = $("#verify-reference").files[0];
  if (mode === "photo") {
    if (!reference) throw new Error("choose the reference photo");
    form.append("reference_image", reference, reference.name);
  } else {
    const externalId = $("#verify-identity").value.trim();
    if (!externalId) throw new Error("enter the external id to verify against");
    form.append("gallery", state.gallery);
    form.append("external_id", externalId);
  }
  const result = await api("POST", "/v1/verify", form);
  const verdict = result.rejection
    ? `cannot verify: ${result.rejection.reason} (${result.rejection.message})`
    : `${result.match ? "same person" : "different people"}: score ${fixed(result.score)}, threshold ${fixed(result.threshold)}`;
  $("#verify-result").textContent = verdict;
  $("#verify-result").className = result.match ? "match" : "no-match";
  const label = `${fixed(result.score)} ${result.match ? "match" : "no match"}`;
  if (result.probe_box) await drawBoxes($("#verify-canvas"), probe, [{ box: result.probe_box, label, good: result.match }]);
  if (mode === "photo" && result.reference_box) {
    await drawBoxes($("#verify-reference-canvas"), reference, [{ box: result.reference_box, label, good: result.match }]);
  }
}

// ------------------------------------------------------------------- wiring

function wire() {
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("#api-key").value.trim());
  });
  $("#sign-out").addEventListener("click", signOut);
  $("#create-gallery").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(createGallery)();
  });
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
  $("#more-identities").addEventListener("click", guarded(() => loadIdentities(false)));
  const zone = $("#drop-zone");
  zone.addEventListener("click", () => $("#enroll-files").click());
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    queueForEnroll(event.dataTransfer.files);
  });
  $("#enroll-files").addEventListener("change", (event) => queueForEnroll(event.target.files));
  $("#enroll-submit").addEventListener("click", guarded(enroll));
  $("#identify-submit").addEventListener("click", guarded(identify));
  $("#verify-submit").addEventListener("click", guarded(verify));
  const saved = sessionStorage.getItem("facedb-key");
  if (saved) signIn(saved);
}

wire();
