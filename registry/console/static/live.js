// The connector page's live part: asks the page's live endpoint (…/live, JSON) every POLL_MS
// and puts what it answers in place: "n of 50 records received", the progress bar, the sample
// table (row by row: samples only grow), the rejected records, and Save, enabled exactly when the
// server says the service would save. The server shapes every text (registry/console/
// connector_view.py), so a cell reads the same loaded or updated; this only places them, as text.
// Also the copy buttons (data-copy="<id of the element whose text to copy>").

const POLL_MS = 750; // the issue asks for at most 1 s between updates

// Polling stops, and the poll in flight is abandoned, as soon as the page sends a form or is left:
// its answer would be thrown away. (Its answer cannot undo the form's either: the live endpoint
// never writes the session cookie, registry/console/session.py, so a poll answered after Rotate
// cannot put back a token the page has taken out.)
let stopped = false;
let inFlight = null;
function stop() {
  stopped = true;
  inFlight?.abort();
}
document.addEventListener("submit", stop, true);
window.addEventListener("pagehide", stop);

const byId = (id) => document.getElementById(id);

function cellRow(values) {
  const tr = document.createElement("tr");
  for (const value of values) {
    const td = document.createElement("td");
    td.textContent = value;
    tr.append(td);
  }
  return tr;
}

function renderSamples(rows) {
  const body = byId("samples")?.tBodies[0];
  if (!body) return;
  if (body.rows.length > rows.length) body.replaceChildren(); // only after a reset
  for (const row of rows.slice(body.rows.length)) body.append(cellRow(row));
}

function renderRejected(rejectedRows) {
  const body = byId("rejected")?.tBodies[0];
  if (!body) return;
  const key = rejectedRows.map((row) => row.at).join(" ");
  if (body.dataset.key === key) return;
  body.dataset.key = key;
  const trs = [];
  for (const row of rejectedRows) {
    for (const reason of row.reasons) {
      const code = document.createElement("code");
      code.textContent = row.record;
      const tr = cellRow([String(reason.index), reason.field, reason.message, ""]);
      tr.dataset.at = row.at;
      tr.lastElementChild.append(code);
      trs.push(tr);
    }
  }
  body.replaceChildren(...trs);
}

function render(live) {
  byId("progress-text").textContent = `${live.count} of ${live.required} records received`;
  const bar = byId("progress");
  bar.max = live.required;
  bar.value = live.count;
  bar.textContent = `${live.count} / ${live.required}`;
  byId("accepted").textContent = String(live.accepted);
  byId("rejected-count").textContent = String(live.rejected);
  const saved = live.status === "saved";
  byId("save").disabled = !live.can_save;
  byId("save-form").hidden = saved;
  byId("saved-note").hidden = !saved;
  const status = byId("status");
  status.dataset.status = live.status;
  status.textContent = saved ? "saved" : "awaiting samples";
  status.className = `status ${saved ? "saved" : "awaiting"}`;
  renderSamples(live.rows);
  renderRejected(live.rejected_rows);
}

function showTrouble(text) {
  let note = byId("live-trouble");
  if (!note) {
    note = document.createElement("p");
    note.id = "live-trouble";
    note.setAttribute("role", "status");
    byId("progress-text").after(note);
  }
  note.hidden = !text;
  note.textContent = text;
}

async function poll(url) {
  if (stopped) return;
  let again = true;
  inFlight = new AbortController();
  try {
    const answer = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
      signal: inFlight.signal,
    });
    if (answer.ok) {
      render(await answer.json());
      showTrouble("");
    } else if (answer.status === 401) {
      showTrouble("Signed out: sign in again to see new records.");
      again = false;
    } else if (answer.status === 404) {
      showTrouble("This connector was deleted.");
      again = false;
    } else {
      showTrouble(`Updates paused (${answer.status}); retrying…`);
    }
  } catch {
    if (stopped) return;
    showTrouble("Updates paused (no connection); retrying…");
  }
  if (again && !stopped) setTimeout(() => poll(url), POLL_MS);
}

async function copy(button) {
  const source = byId(button.dataset.copy);
  if (!source) return;
  const text = source.textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard permission (an http origin other than localhost): select it for Ctrl-C.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Selected: press Ctrl-C";
    return;
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => {
    button.textContent = label;
  }, 1500);
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", () => copy(button));
}

const live = byId("live");
if (live?.dataset.liveUrl) poll(live.dataset.liveUrl);
