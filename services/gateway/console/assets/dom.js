// Building DOM nodes without HTML strings: every text goes in as text, so
// nothing the server or a person wrote can become markup.

/** `create("button", {type: "button", textContent: "Send"}, ...children)`: properties assigned. */
export function create(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/**
 * `element("td", {text, className, onclick, "aria-label": …}, ...children)`:
 * `text` is the text content, `on…` adds a listener, anything else is an
 * attribute (`true` = present; `false`, null, undefined = left out), and
 * null/false children are skipped.
 */
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** `textElement("p", "note", "text")`: a node with a class and a text. */
export function textElement(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Links views.css once. The shell links it for the routes it knows to need
 * it, with the same marker; a view mounted elsewhere (the tree, inside the
 * chat screen) brings it itself.
 */
export function ensureViewStyles() {
  if (document.querySelector("link[data-views-css]")) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = new URL("./views.css", import.meta.url).href;
  link.dataset.viewsCss = "";
  document.head.append(link);
}
