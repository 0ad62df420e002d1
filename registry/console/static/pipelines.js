// Pipelines: the list's live numbers (polled once a second), a confirm before Delete, and on the
// new-pipeline form only the chosen sink's settings shown. Without it the pages work as forms.

const POLL_MS = 1000;

function confirmDeletes() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

function showStatus(row, status) {
  const cells = {
    status: status.status,
    records_delivered: String(status.records_delivered),
    lag: status.lag === null ? "—" : String(status.lag),
    records_dead_lettered: String(status.records_dead_lettered),
    last_error: status.last_error ?? "",
  };
  for (const [field, text] of Object.entries(cells)) {
    const cell = row.querySelector(`[data-field="${field}"]`);
    if (cell && cell.textContent !== text) cell.textContent = text;
  }
  const badge = row.querySelector('[data-field="status"]');
  if (badge) badge.className = `status ${status.status}`;
}

async function poll(table) {
  try {
    const answer = await fetch("/console/pipelines/status", {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (answer.ok) {
      for (const status of await answer.json()) {
        const row = table.querySelector(`tr[data-pipeline-id="${CSS.escape(status.id)}"]`);
        if (row) showStatus(row, status);
      }
    }
  } catch {
    // The next poll tries again; the numbers shown stay until then.
  }
  window.setTimeout(() => poll(table), POLL_MS);
}

function sinkChooser(form) {
  const radios = form.querySelectorAll('input[name="sink"]');
  const update = () => {
    const chosen = form.querySelector('input[name="sink"]:checked')?.value;
    for (const fieldset of form.querySelectorAll("fieldset[data-sink]")) {
      fieldset.hidden = fieldset.dataset.sink !== chosen;
    }
  };
  for (const radio of radios) radio.addEventListener("change", update);
  update();
}

confirmDeletes();
const table = document.querySelector("table.pipelines");
if (table) window.setTimeout(() => poll(table), POLL_MS);
const form = document.querySelector("form.pipeline-form");
if (form) sinkChooser(form);
