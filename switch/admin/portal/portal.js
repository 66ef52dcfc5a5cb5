// The portal's few helpers: the API's base, the session token, text-only rendering
// (never innerHTML with data: every value comes from the API and may be a caller's text).
"use strict";
const API = "/api/v1";

function val(id) { return document.getElementById(id).value.trim(); }

function say(text) { document.getElementById("status").textContent = text; }

function token() { return sessionStorage.getItem("wte-token") || ""; }

async function call(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, {Authorization: "Bearer " + token()});
  const res = await fetch(API + path, Object.assign({}, options, {headers}));
  if (res.status === 401) { sessionStorage.removeItem("wte-token"); location.href = "index.html"; }
  return res;
}

async function api(path, method = "GET", body = undefined) {
  const options = {method};
  if (body !== undefined) {
    options.headers = {"Content-Type": "application/json"};
    options.body = JSON.stringify(body);
  }
  const res = await call(path, options);
  if (res.status === 204) return {};
  const data = await res.json().catch(() => ({error: "bad answer"}));
  if (!res.ok) { say(data.error || ("error " + res.status)); return null; }
  return data;
}

function when(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleString() : "";
}

// Fill <tbody id=...> with one row per item; `cells` maps an item to its cell texts.
function fillTable(id, items, cells) {
  const body = document.getElementById(id);
  body.replaceChildren();
  for (const item of items) {
    const tr = document.createElement("tr");
    for (const cell of cells(item)) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell ?? "";
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

function logout() {
  call("/session", {method: "DELETE"}).finally(() => {
    sessionStorage.removeItem("wte-token");
    location.href = "index.html";
  });
}
