// The wte softphone (issue 23): a minimal SIP over WebSocket user agent (RFC 3261, RFC 7118)
// with WebRTC media. No build step, no library, nothing fetched from elsewhere.
//
// - Credentials: POST /api/v1/webrtc/credentials gives a short-lived SIP password for the
//   signed-in user (never the SIP password itself is used for SIP).
// - REGISTER with digest SHA-256 (RFC 7616, crypto.subtle), +sip.ice in the Contact
//   (RFC 5768) so that the switch offers WebRTC to this page.
// - One call at a time: INVITE / CANCEL / BYE, answer or decline, hold and resume
//   (re-INVITE, RFC 3264 8.4), blind transfer (REFER, RFC 3515), digits as SIP INFO
//   (application/dtmf-relay), missed calls kept in this browser (localStorage).
// - ICE is not trickled: an offer or answer leaves once gathering is complete.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const rand = (n) => {
    const a = new Uint8Array(n);
    crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
  };
  const EXPIRES = 300;
  const COMPACT = { v: "via", f: "from", t: "to", i: "call-id", m: "contact", l: "content-length",
                    c: "content-type" };

  // -- SIP messages --

  function parse(text) {
    const cut = text.indexOf("\r\n\r\n");
    const head = (cut < 0 ? text : text.slice(0, cut)).split("\r\n");
    const body = cut < 0 ? "" : text.slice(cut + 4);
    const first = head.shift();
    const headers = [];
    for (const line of head) {
      const i = line.indexOf(":");
      if (i <= 0) continue;
      let name = line.slice(0, i).trim().toLowerCase();
      name = COMPACT[name] || name;
      headers.push([name, line.slice(i + 1).trim()]);
    }
    const msg = { headers, body,
      get(name) { const h = headers.find((x) => x[0] === name); return h ? h[1] : null; },
      all(name) { return headers.filter((x) => x[0] === name).map((x) => x[1]); } };
    if (first.startsWith("SIP/2.0 ")) {
      msg.status = parseInt(first.slice(8, 11), 10);
      msg.reason = first.slice(12);
    } else {
      const parts = first.split(" ");
      msg.method = parts[0];
      msg.uri = parts[1];
    }
    const cseq = (msg.get("cseq") || "0 X").split(/\s+/);
    msg.cseq = parseInt(cseq[0], 10);
    msg.cseqMethod = cseq[1];
    msg.callId = msg.get("call-id");
    return msg;
  }

  const tagOf = (value) => { const m = /;\s*tag=([^;>\s]+)/i.exec(value || ""); return m ? m[1] : null; };
  const uriOf = (value) => { const m = /<([^>]+)>/.exec(value || ""); return m ? m[1] : (value || "").split(";")[0].trim(); };
  const userOf = (value) => { const m = /sips?:([^@;>]+)@/.exec(value || ""); return m ? decodeURIComponent(m[1]) : value; };

  // -- digest (RFC 7616 section 3.4) --

  async function sha256(text) {
    const buf = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function authParams(value) {
    const out = {};
    const re = /([a-zA-Z-]+)\s*=\s*("([^"\\]|\\.)*"|[^,\s]+)/g;
    let m;
    while ((m = re.exec(value.replace(/^Digest\s+/i, "")))) {
      let v = m[2];
      if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, "$1");
      out[m[1].toLowerCase()] = v;
    }
    return out;
  }

  async function authorization(challenges, method, uri, user, password) {
    const sha = challenges.map(authParams).find((p) => (p.algorithm || "MD5").toUpperCase() === "SHA-256");
    if (!sha) throw new Error("the switch offered no SHA-256 digest challenge");
    const cnonce = rand(8);
    const nc = "00000001";
    const ha1 = await sha256(`${user}:${sha.realm}:${password}`);
    const ha2 = await sha256(`${method}:${uri}`);
    const response = await sha256(`${ha1}:${sha.nonce}:${nc}:${cnonce}:auth:${ha2}`);
    return `Digest username="${user}", realm="${sha.realm}", nonce="${sha.nonce}", uri="${uri}", ` +
      `response="${response}", algorithm=SHA-256, qop=auth, nc=${nc}, cnonce="${cnonce}"`;
  }

  // -- the user agent --

  const ua = {
    ws: null, creds: null, login: null, domain: "", viaHost: rand(5) + ".invalid",
    contactUser: rand(4), regCallId: rand(8), regCseq: 0, regTag: rand(4), regTimer: null,
    transactions: new Map(), call: null, registered: false, stream: null, audioCtx: null,
    analyser: null, peakHz: 0, rms: 0,
  };

  const contact = () => `<sip:${ua.contactUser}@${ua.viaHost};transport=ws>;+sip.ice`;
  const aor = () => `sip:${ua.creds.username}@${ua.domain}`;

  function status(text) { $("status").textContent = text; }
  function error(text) {
    const el = $("error");
    el.textContent = text || "";
    el.hidden = !text;
  }

  function request(method, uri, { callId, cseq, from, to, extra = [], body = "", ctype = "application/sdp",
                                  branch = "z9hG4bK" + rand(8) }) {
    const lines = [`${method} ${uri} SIP/2.0`,
      `Via: SIP/2.0/${ua.secure ? "WSS" : "WS"} ${ua.viaHost};branch=${branch};rport`,
      "Max-Forwards: 70", `From: ${from}`, `To: ${to}`, `Call-ID: ${callId}`,
      `CSeq: ${cseq} ${method}`, `Contact: ${contact()}`, "User-Agent: wte-softphone/1", ...extra];
    if (body) lines.push(`Content-Type: ${ctype}`);
    lines.push(`Content-Length: ${new TextEncoder().encode(body).length}`, "", body);
    return { text: lines.join("\r\n"), branch };
  }

  // send a request; resolves with its final response (provisional ones go to onProvisional)
  function send(method, uri, opts, onProvisional) {
    const { text, branch } = request(method, uri, { ...opts, branch: undefined });
    opts.branch = branch;  // the ACK of a non-2xx and a CANCEL reuse it (RFC 3261 17.1.1.3, 9.1)
    return new Promise((resolve, reject) => {
      ua.transactions.set(branch, { resolve, onProvisional, method });
      try { ua.ws.send(text); } catch (e) { ua.transactions.delete(branch); reject(e); }
      setTimeout(() => {
        if (ua.transactions.delete(branch)) reject(new Error(`${method}: no answer`));
      }, method === "INVITE" ? 180000 : 32000);
    });
  }

  function respond(req, code, reason, { tag = null, body = "", extra = [] } = {}) {
    let to = req.get("to");
    if (tag && !tagOf(to)) to += `;tag=${tag}`;
    const lines = [`SIP/2.0 ${code} ${reason}`, ...req.all("via").map((v) => `Via: ${v}`),
      `From: ${req.get("from")}`, `To: ${to}`, `Call-ID: ${req.callId}`,
      `CSeq: ${req.get("cseq")}`, `Contact: ${contact()}`, ...extra];
    if (body) lines.push("Content-Type: application/sdp");
    lines.push(`Content-Length: ${new TextEncoder().encode(body).length}`, "", body);
    ua.ws.send(lines.join("\r\n"));
  }

  // an authenticated request: once more with credentials after a 401/407 (RFC 3261 22.2)
  async function sendAuth(method, uri, opts, onProvisional) {
    let resp = await send(method, uri, opts, onProvisional);
    if (resp.status === 401 || resp.status === 407) {
      if (method === "INVITE") ack(uri, opts, resp);
      const name = resp.status === 401 ? "www-authenticate" : "proxy-authenticate";
      const header = resp.status === 401 ? "Authorization" : "Proxy-Authorization";
      const value = await authorization(resp.all(name), method, uri, ua.creds.username, ua.creds.password);
      opts.cseq += 1;
      opts.extra = [...(opts.extra || []), `${header}: ${value}`];
      resp = await send(method, uri, opts, onProvisional);
    }
    return resp;
  }

  function ack(uri, opts, resp) {
    // RFC 3261 17.1.1.3 for a non-2xx (same To tag); 13.2.2.4 for a 2xx (new transaction)
    const { text } = request("ACK", uri, { callId: opts.callId, cseq: opts.cseq, from: opts.from,
                                           to: resp.get("to"),
                                           branch: resp.status >= 300 ? opts.branch : undefined });
    ua.ws.send(text);
  }

  function onMessage(text) {
    if (!text.trim()) return;
    const msg = parse(text);
    if (msg.status) {
      const via = msg.get("via") || "";
      const m = /branch=([^;\s]+)/.exec(via);
      const t = m && ua.transactions.get(m[1]);
      if (!t || t.method !== msg.cseqMethod) return;  // a CANCEL's answer shares the INVITE's branch
      if (msg.status < 200) { if (t.onProvisional) t.onProvisional(msg); return; }
      ua.transactions.delete(m[1]);
      t.resolve(msg);
      return;
    }
    onRequest(msg).catch((e) => error(e.message));
  }

  // -- registration --

  async function fetchCredentials() {
    const headers = {};
    const session = sessionStorage.getItem("wte-token");  // the portal's login (issue 18)
    if (ua.login) headers.Authorization = "Basic " + btoa(`${ua.login.user}:${ua.login.password}`);
    else if (session) headers.Authorization = "Bearer " + session;
    const resp = await fetch("/api/v1/webrtc/credentials", { method: "POST", headers, credentials: "same-origin" });
    if (resp.status === 401) throw new Error("Wrong extension or password.");
    if (resp.status === 429) throw new Error("Too many failed attempts: wait a few minutes.");
    if (!resp.ok) throw new Error(`The switch refused the sign-in (${resp.status}).`);
    return resp.json();
  }

  async function register(expires = EXPIRES) {
    ua.creds = await fetchCredentials();  // a fresh short-lived password at each refresh
    ua.regCseq += 1;
    const opts = { callId: ua.regCallId, cseq: ua.regCseq, from: `<${aor()}>;tag=${ua.regTag}`,
                   to: `<${aor()}>`, extra: [`Expires: ${expires}`] };
    const resp = await sendAuth("REGISTER", `sip:${ua.domain}`, opts);
    ua.regCseq = opts.cseq;
    if (resp.status !== 200) throw new Error(`Registration refused: ${resp.status} ${resp.reason}`);
    ua.registered = expires > 0;
    clearTimeout(ua.regTimer);
    if (ua.registered) {
      status(`Registered as ${ua.creds.username}`);
      ua.regTimer = setTimeout(() => register().catch((e) => error(e.message)), (expires - 30) * 1000);
    }
  }

  function connect(url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, "sip");
      ws.onopen = () => resolve(ws);
      ws.onerror = () => reject(new Error("Cannot reach the switch's WebSocket."));
      ws.onmessage = (ev) => onMessage(typeof ev.data === "string" ? ev.data : "");
      ws.onclose = () => { if (ua.registered) { ua.registered = false; status("Disconnected"); } };
    });
  }

  async function signIn(user, password) {
    error("");
    ua.login = user ? { user, password } : null;  // kept in this page's memory only
    status("Signing in...");
    ua.creds = await fetchCredentials();
    ua.domain = ua.creds.domain;
    ua.secure = location.protocol === "https:";
    ua.ws = await connect(ua.secure ? ua.creds.wss_url : ua.creds.ws_url);
    await register();
    $("login").hidden = true;
    $("phone").hidden = false;
    showMissed();
  }

  // -- media --

  async function microphone() {
    if (ua.stream) return ua.stream;
    try {
      const p = $("processing").checked;
      ua.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: p, noiseSuppression: p, autoGainControl: p }, video: false });
      return ua.stream;
    } catch (e) {
      if (e && (e.name === "NotAllowedError" || e.name === "SecurityError")) {
        throw new Error("Microphone access was refused. Allow the microphone for this page " +
                        "(the icon in the address bar), then call again.");
      }
      if (e && e.name === "NotFoundError") throw new Error("No microphone was found on this computer.");
      throw new Error(`The microphone cannot be used: ${e && e.message}`);
    }
  }

  function newPeer() {
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.ontrack = (ev) => {
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      $("remote").srcObject = stream;
      listen(stream);
    };
    return pc;
  }

  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000);  // what was gathered by then goes
    });
  }

  // the level meter, and what the page hears (its dominant frequency) for tests
  function listen(stream) {
    ua.audioCtx = ua.audioCtx || new AudioContext();
    const src = ua.audioCtx.createMediaStreamSource(stream);
    const analyser = ua.audioCtx.createAnalyser();
    analyser.fftSize = 4096;
    src.connect(analyser);
    ua.analyser = analyser;
    const bins = new Float32Array(analyser.frequencyBinCount);
    const wave = new Float32Array(analyser.fftSize);
    const tick = () => {
      if (ua.analyser !== analyser) return;
      analyser.getFloatFrequencyData(bins);
      analyser.getFloatTimeDomainData(wave);
      let best = 1;
      for (let i = 2; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
      ua.peakHz = best * ua.audioCtx.sampleRate / analyser.fftSize;
      ua.rms = Math.sqrt(wave.reduce((s, x) => s + x * x, 0) / wave.length);
      $("level").value = Math.min(1, ua.rms * 4);
      setTimeout(tick, 100);
    };
    tick();
  }

  // -- calls --

  function setCallUi(state, text) {
    if (ua.call) ua.call.state = state;
    $("controls").hidden = !(state === "calling" || state === "active" || state === "held");
    $("incoming").hidden = state !== "incoming";
    $("call").disabled = state !== "idle";
    $("hold").textContent = state === "held" ? "Resume" : "Hold";
    status(text);
  }

  async function dial(number) {
    if (ua.call) return;
    error("");
    const target = number.replace(/[\s().-]/g, "");
    if (!target) return;
    let stream;
    try { stream = await microphone(); } catch (e) { error(e.message); return; }
    const pc = newPeer();
    stream.getTracks().forEach((t) => pc.addTrack(t, stream));
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const uri = `sip:${encodeURIComponent(target)}@${ua.domain}`;  // "#" as %23
    const call = ua.call = { pc, outgoing: true, callId: rand(8), localTag: rand(4), remoteTag: null,
      uri, target: uri, peer: target, cseq: 1, sdp: pc.localDescription.sdp, version: 0, state: "calling" };
    call.opts = { callId: call.callId, cseq: 1, from: `<${aor()}>;tag=${call.localTag}`, to: `<${uri}>`,
                  body: call.sdp };
    setCallUi("calling", `Calling ${target}...`);
    let resp;
    try {
      resp = await sendAuth("INVITE", uri, call.opts, (p) => {
        call.remoteTag = tagOf(p.get("to")) || call.remoteTag;
        if (p.status === 180 || p.status === 183) status(`Ringing ${target}...`);
      });
    } catch (e) { endCall(e.message); return; }
    call.cseq = call.opts.cseq;
    if (resp.status >= 300) {
      ack(uri, call.opts, resp);
      endCall(call.cancelled ? "Call cancelled" : `Call failed: ${resp.status} ${resp.reason}`);
      return;
    }
    call.remoteTag = tagOf(resp.get("to"));
    call.toHeader = resp.get("to");
    call.target = uriOf(resp.get("contact")) || uri;
    ack(call.target, { ...call.opts, cseq: call.cseq }, resp);
    await pc.setRemoteDescription({ type: "answer", sdp: resp.body });
    setCallUi("active", `In call with ${target}`);
  }

  function dialogOpts(call, method, extra = [], body = "", ctype = "application/sdp") {
    call.cseq += 1;
    const from = call.outgoing ? `<${aor()}>;tag=${call.localTag}` : call.invite.get("to") + (tagOf(call.invite.get("to")) ? "" : `;tag=${call.localTag}`);
    const to = call.outgoing ? call.toHeader : call.invite.get("from");
    return { callId: call.callId, cseq: call.cseq, from, to, extra, body, ctype };
  }

  async function hangUp() {
    const call = ua.call;
    if (!call) return;
    if (call.state === "calling") {  // CANCEL the INVITE (RFC 3261 9.1)
      call.cancelled = true;
      // the INVITE's branch, CSeq number, From and To (RFC 3261 9.1)
      const { text } = request("CANCEL", call.uri, { callId: call.callId, cseq: call.opts.cseq,
        from: call.opts.from, to: call.opts.to, branch: call.opts.branch });
      ua.ws.send(text);
      return;
    }
    if (call.state === "incoming") { respond(call.invite, 486, "Busy Here", { tag: call.localTag }); endCall("Declined"); return; }
    endCall("Call ended");
    try { await send("BYE", call.target, dialogOpts(call, "BYE")); } catch (e) { /* gone anyway */ }
  }

  function endCall(text) {
    const call = ua.call;
    ua.call = null;
    ua.analyser = null;
    if (call && call.pc) call.pc.close();
    setCallUi("idle", text + (ua.registered ? ` - registered as ${ua.creds.username}` : ""));
  }

  async function toggleHold() {
    const call = ua.call;
    if (!call || (call.state !== "active" && call.state !== "held")) return;
    const hold = call.state === "active";
    // the same ICE and DTLS, another direction and o= version (RFC 3264 8.4)
    let sdp = call.pc.localDescription.sdp.replace(/a=(sendrecv|sendonly|recvonly|inactive)\r\n/g,
                                                   `a=${hold ? "sendonly" : "sendrecv"}\r\n`);
    const o = /^o=(\S+) (\S+) (\d+)/m.exec(sdp);
    call.version = Math.max(call.version, parseInt(o[3], 10)) + 1;
    sdp = sdp.replace(/^o=(\S+) (\S+) (\d+)/m, `o=$1 $2 ${call.version}`);
    const opts = dialogOpts(call, "INVITE", [], sdp);
    const resp = await send("INVITE", call.target, opts);
    ack(call.target, opts, resp);
    if (resp.status === 200) setCallUi(hold ? "held" : "active", hold ? "On hold" : `In call with ${call.peer}`);
  }

  async function transfer(number) {
    const call = ua.call;
    if (!call || !number) return;
    const referTo = `sip:${number.replace(/[\s().-]/g, "")}@${ua.domain}`;
    const resp = await send("REFER", call.target, dialogOpts(call, "REFER", [`Refer-To: <${referTo}>`,
      `Referred-By: <${aor()}>`]));
    status(resp.status < 300 ? `Transferring to ${number}...` : `Transfer refused: ${resp.status}`);
  }

  async function digit(d) {
    const call = ua.call;
    if (!call || call.state !== "active") return;
    await send("INFO", call.target, dialogOpts(call, "INFO", [], `Signal=${d}\r\nDuration=160\r\n`,
                                               "application/dtmf-relay"));
  }

  async function onRequest(req) {
    const call = ua.call && ua.call.callId === req.callId ? ua.call : null;
    if (req.method === "INVITE" && !tagOf(req.get("to"))) {
      if (ua.call) { respond(req, 486, "Busy Here", { tag: rand(4) }); return; }
      const from = userOf(uriOf(req.get("from")));
      const c = ua.call = { outgoing: false, invite: req, callId: req.callId, localTag: rand(4),
        target: uriOf(req.get("contact")), peer: from, cseq: 0, version: 0, state: "incoming" };
      respond(req, 180, "Ringing", { tag: c.localTag });
      $("incoming-from").textContent = `Call from ${from}`;
      setCallUi("incoming", `Incoming call from ${from}`);
      return;
    }
    if (req.method === "INVITE" && call) {  // the switch re-offers: our description again
      respond(req, 200, "OK", { tag: call.localTag, body: call.pc.localDescription.sdp });
      return;
    }
    if (req.method === "ACK") return;
    if (req.method === "CANCEL" && call && call.state === "incoming") {
      respond(req, 200, "OK", { tag: call.localTag });
      respond(call.invite, 487, "Request Terminated", { tag: call.localTag });
      addMissed(call.peer);
      endCall(`Missed call from ${call.peer}`);
      return;
    }
    if (req.method === "BYE" && call) {
      respond(req, 200, "OK", { tag: call.localTag });
      endCall("Call ended by the other party");
      return;
    }
    if (req.method === "NOTIFY" || req.method === "OPTIONS" || req.method === "INFO") {
      respond(req, 200, "OK", { tag: call ? call.localTag : rand(4) });
      return;
    }
    respond(req, 481, "Call/Transaction Does Not Exist", { tag: rand(4) });
  }

  async function answer() {
    const call = ua.call;
    if (!call || call.state !== "incoming") return;
    error("");
    let stream;
    try { stream = await microphone(); } catch (e) {
      error(e.message);
      respond(call.invite, 480, "Temporarily Unavailable", { tag: call.localTag });
      endCall("Could not answer");
      return;
    }
    const pc = call.pc = newPeer();
    await pc.setRemoteDescription({ type: "offer", sdp: call.invite.body });
    stream.getTracks().forEach((t) => pc.addTrack(t, stream));
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    respond(call.invite, 200, "OK", { tag: call.localTag, body: pc.localDescription.sdp });
    setCallUi("active", `In call with ${call.peer}`);
  }

  // -- missed calls (this browser only) --

  function addMissed(from) {
    const list = JSON.parse(localStorage.getItem("wte-missed") || "[]");
    list.unshift({ from, at: new Date().toISOString() });
    localStorage.setItem("wte-missed", JSON.stringify(list.slice(0, 20)));
    showMissed();
  }

  function showMissed() {
    const ul = $("missed");
    ul.replaceChildren();
    for (const m of JSON.parse(localStorage.getItem("wte-missed") || "[]")) {
      const li = document.createElement("li");
      li.textContent = `${m.from} - ${new Date(m.at).toLocaleString()}`;
      ul.appendChild(li);
    }
  }

  // -- page wiring --

  for (const d of "123456789*0#") {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = d;
    b.addEventListener("click", () => digit(d).catch((e) => error(e.message)));
    $("keypad").appendChild(b);
  }
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    signIn($("user").value.trim(), $("password").value).catch((e) => { status("Signed out"); error(e.message); });
    $("password").value = "";
  });
  $("dial").addEventListener("submit", (ev) => { ev.preventDefault(); dial($("number").value).catch((e) => endCall(e.message)); });
  $("hangup").addEventListener("click", () => hangUp().catch((e) => error(e.message)));
  $("answer").addEventListener("click", () => answer().catch((e) => error(e.message)));
  $("decline").addEventListener("click", () => hangUp().catch((e) => error(e.message)));
  $("hold").addEventListener("click", () => toggleHold().catch((e) => error(e.message)));
  $("transfer").addEventListener("click", () => transfer($("transfer-to").value).catch((e) => error(e.message)));
  $("signout").addEventListener("click", async () => {
    try { await register(0); } catch (e) { /* signing out anyway */ }
    ua.login = null;
    if (ua.ws) ua.ws.close();
    $("phone").hidden = true;
    $("login").hidden = false;
    status("Signed out");
  });
  setCallUi("idle", "Signed out");
  // opened from the portal: its session gets the short-lived SIP password, no second sign-in
  if (sessionStorage.getItem("wte-token")) {
    signIn("", "").catch((e) => { status("Signed out"); error(e.message); });
  }
  if (!window.isSecureContext) error("This page needs HTTPS (or localhost) for the microphone.");

  // read-only state for the page's own tests (tests/system/test_softphone_page.py)
  window.softphone = {
    state: () => (ua.call ? ua.call.state : (ua.registered ? "registered" : "signed-out")),
    heard: () => ({ peakHz: ua.peakHz, rms: ua.rms }),
  };
})();
