// The schema builder's rows, in place: Add Field, Add nested field and Delete without a round
// trip to the server. Without this module the same buttons post the form and the server answers
// with the rows changed (registry/console/builder_pages.py); everything else (Create Schema,
// "Propose fields") is a plain form post either way.
//
// Every input is named by its row's path, the one the API's problems use ("fields[2].precision",
// "fields[0].fields[1].name"), so after rows are added or deleted the paths are renumbered: the
// server reads rows by those names, and places its problems beside them.

const form = document.querySelector("form.builder");
const template = document.getElementById("row-template");
// Attributes that hold a path; a button's value too ("delete:fields[2]"), never an input's.
const PATH_ATTRIBUTES = ["name", "id", "data-path", "aria-describedby"];

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// Replace the path `from` by `to` where it starts a path (at the start, after "e-", "delete:",
// "add:" or a space) and ends at its end or at a "." step: "fields[1]" is not in "fields[10]",
// nor in "fields[0].fields[1]".
function repath(row, from, to) {
  const pattern = new RegExp(`(^|[-:\\s])${escapeRegExp(from)}(?=$|[.\\s])`, "g");
  for (const element of [row, ...row.querySelectorAll("*")]) {
    const names = element.tagName === "BUTTON" ? [...PATH_ATTRIBUTES, "value"] : PATH_ATTRIBUTES;
    for (const name of names) {
      const value = element.getAttribute(name);
      if (value !== null && value.includes(from)) {
        element.setAttribute(name, value.replace(pattern, `$1${to}`));
      }
    }
  }
}

function rowsOf(container) {
  return [...container.children].filter((element) => element.classList.contains("field-row"));
}

function renumber(container, prefix) {
  rowsOf(container).forEach((row, index) => {
    const path = prefix ? `${prefix}.fields[${index}]` : `fields[${index}]`;
    if (row.dataset.path !== path) {
      repath(row, row.dataset.path, path);
    }
    renumber(row.querySelector(":scope > .nested > .rows"), path);
  });
}

function renumberAll() {
  renumber(form.querySelector(".rows.top"), "");
}

function addRow(container) {
  const row = template.content.firstElementChild.cloneNode(true);
  container.append(row);
  renumberAll();
  row.querySelector("input").focus();
}

function deleteRow(row) {
  // Keep the keyboard's place: the next row's name, else the previous one's, else Add Field.
  const container = row.parentElement;
  const siblings = rowsOf(container);
  const index = siblings.indexOf(row);
  const next = siblings[index + 1] ?? siblings[index - 1];
  row.remove();
  renumberAll();
  const add = container.parentElement.querySelector(":scope > .add-field, :scope > .add-nested");
  (next?.querySelector("input") ?? add)?.focus();
}

if (form && template) {
  form.addEventListener("click", (event) => {
    const button = event.target.closest("button[name=action]");
    if (!button) {
      return;
    }
    if (button.classList.contains("add-field")) {
      event.preventDefault();
      addRow(form.querySelector(".rows.top"));
    } else if (button.classList.contains("add-nested")) {
      event.preventDefault();
      addRow(button.closest(".nested").querySelector(":scope > .rows"));
    } else if (button.classList.contains("delete-row")) {
      event.preventDefault();
      deleteRow(button.closest(".field-row"));
    }
  });
}
