// The conversation's tree (issue 17 point 4, seed 004): a collapsible
// outline of its nodes, kept live from `/ws/chat` and edited by hand.
//
//   const unmount = mountTree(root, { api, conversationId, socket });
//
// The tree document (services/demo-agents/src/tree.rs) is a root node, each
// node `{id, label, children: [...]}`; a new conversation's `{}` is shown as
// the empty tree (a lone "root"). A document of another shape is shown as
// JSON, read-only.
//
// State. The view holds the tree and its version. `session_ready`
// (`initial_tree`, `tree_version`) and GET /api/v1/conversations/{id}
// (`tree`, `tree_version`) replace it when they are at least as new;
// `tree_update` (`delta`, RFC 6902, and `version`) is applied when it is the
// next version, ignored when it is one the view has, and a gap (a version
// skipped) makes the view read the tree again.
//
// Edits. Add, rename, move (under another node, or up and down among its
// siblings) and remove are kept as the person's intent ("rename node
// `fruits` to Fruit"), turned into a patch against the tree the view has and
// sent as `tree_edit {patch, base_version}`, one at a time; the view shows
// the result when the server's `tree_update` comes back (no optimistic
// change to undo). The server refuses an edit made on a version that is no
// longer current with an `error` frame of code `stale_tree` and
// `current_version`: the view then shows a conflict notice, brings its tree
// to that version (the `tree_update` it is owed, or a fresh read), computes
// the same intent again on the current tree and resends it. An intent the
// current tree already satisfies (another tab made the same change) is not
// sent again; one it cannot satisfy any more (its node was removed) is
// dropped with a notice saying so. An edit whose answer was lost with the
// connection is checked the same way against the tree of `session_ready`.
import { element as el, ensureViewStyles as ensureStyles } from "../dom.js";

/** An edit is re-applied at most this many times in a row on conflicts. */
const MAX_REBASES = 5;

// --- JSON Patch (RFC 6902) and JSON Pointer (RFC 6901) ---------------------

/** Why a patch or pointer was refused; the document is then unchanged. */
export class PatchError extends Error {
  constructor(message) {
    super(message);
    this.name = "PatchError";
  }
}

const has = (object, key) => Object.prototype.hasOwnProperty.call(object, key);
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;

/** The reference tokens of a JSON Pointer: "" is the whole document. */
export function parsePointer(pointer) {
  if (typeof pointer !== "string") throw new PatchError("a JSON Pointer is a string");
  if (pointer === "") return [];
  if (pointer[0] !== "/") throw new PatchError(`the pointer "${pointer}" does not start with "/"`);
  return pointer
    .slice(1)
    .split("/")
    .map((token) => {
      if (/~[^01]|~$/.test(token)) {
        throw new PatchError(`the pointer "${pointer}" has an invalid escape (only ~0 and ~1)`);
      }
      return token.replace(/~1/g, "/").replace(/~0/g, "~");
    });
}

/** The JSON Pointer of `tokens`, escaped. */
export function formatPointer(tokens) {
  return tokens.map((t) => `/${String(t).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
}

/** A deep copy of a JSON value; `__proto__` keys stay plain data. */
function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/** JSON equality: same type, same members (any order of keys), same items in order. */
export function jsonEqual(a, b) {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((key) => has(b, key) && jsonEqual(a[key], b[key]))
    );
  }
  return false;
}

function setMember(object, key, value) {
  // defineProperty, so a key named "__proto__" is a member like any other.
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
}

/** The value at `tokens`, or a PatchError naming `pointer`. */
function resolve(doc, tokens, pointer) {
  let here = doc;
  for (const token of tokens) {
    if (Array.isArray(here)) {
      if (!ARRAY_INDEX.test(token) || Number(token) >= here.length) {
        throw new PatchError(`"${pointer}" does not exist (no item ${token})`);
      }
      here = here[Number(token)];
    } else if (isObject(here) && has(here, token)) {
      here = here[token];
    } else {
      throw new PatchError(`"${pointer}" does not exist`);
    }
  }
  return here;
}

/** The container of `tokens`' last token, checked to be one. */
function parentOf(doc, tokens, pointer) {
  const parent = resolve(doc, tokens.slice(0, -1), pointer);
  if (!Array.isArray(parent) && !isObject(parent)) {
    throw new PatchError(`"${pointer}": its parent is neither an object nor an array`);
  }
  return parent;
}

function arrayIndex(array, token, pointer, { append }) {
  if (append && token === "-") return array.length;
  if (!ARRAY_INDEX.test(token)) throw new PatchError(`"${pointer}": "${token}" is not an array index`);
  const index = Number(token);
  const last = append ? array.length : array.length - 1;
  if (index > last) throw new PatchError(`"${pointer}": index ${index} is out of bounds`);
  return index;
}

/** Each operation returns the new document (the root may be replaced). */
function add(doc, tokens, value, pointer) {
  if (tokens.length === 0) return value;
  const parent = parentOf(doc, tokens, pointer);
  const key = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(parent, key, pointer, { append: true }), 0, value);
  } else {
    setMember(parent, key, value);
  }
  return doc;
}

function remove(doc, tokens, pointer) {
  if (tokens.length === 0) throw new PatchError("the whole document cannot be removed");
  const parent = parentOf(doc, tokens, pointer);
  const key = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    const [removed] = parent.splice(arrayIndex(parent, key, pointer, { append: false }), 1);
    return { doc, removed };
  }
  if (!has(parent, key)) throw new PatchError(`"${pointer}" does not exist`);
  const removed = parent[key];
  delete parent[key];
  return { doc, removed };
}

function operationPointer(op, field) {
  if (!has(op, field)) throw new PatchError(`a "${op.op}" operation needs "${field}"`);
  return op[field];
}

function operationValue(op) {
  if (!has(op, "value")) throw new PatchError(`a "${op.op}" operation needs "value"`);
  return clone(op.value);
}

/**
 * Applies an RFC 6902 patch (an array of operations) to a JSON document and
 * returns the patched document. The input is never changed: the patch works
 * on a copy, so a patch refused half-way (PatchError) leaves nothing behind.
 */
export function applyPatch(document, patch) {
  if (!Array.isArray(patch)) throw new PatchError("a patch is an array of operations");
  let doc = clone(document);
  patch.forEach((op, n) => {
    if (!isObject(op) || typeof op.op !== "string") {
      throw new PatchError(`operation ${n} is not an object with an "op"`);
    }
    const path = operationPointer(op, "path");
    const tokens = parsePointer(path);
    switch (op.op) {
      case "add":
        doc = add(doc, tokens, operationValue(op), path);
        break;
      case "remove":
        doc = remove(doc, tokens, path).doc;
        break;
      case "replace": {
        const value = operationValue(op);
        resolve(doc, tokens, path);
        if (tokens.length === 0) {
          doc = value;
        } else {
          const parent = parentOf(doc, tokens, path);
          const key = tokens[tokens.length - 1];
          if (Array.isArray(parent)) parent[arrayIndex(parent, key, path, { append: false })] = value;
          else setMember(parent, key, value);
        }
        break;
      }
      case "move": {
        const from = operationPointer(op, "from");
        const fromTokens = parsePointer(from);
        if (from === path) {
          resolve(doc, tokens, path);
          break;
        }
        const inside =
          fromTokens.length < tokens.length && fromTokens.every((t, i) => t === tokens[i]);
        if (inside) throw new PatchError(`"${from}" cannot be moved into itself ("${path}")`);
        const taken = remove(doc, fromTokens, from);
        doc = add(taken.doc, tokens, taken.removed, path);
        break;
      }
      case "copy": {
        const from = operationPointer(op, "from");
        doc = add(doc, tokens, clone(resolve(doc, parsePointer(from), from)), path);
        break;
      }
      case "test": {
        const expected = has(op, "value") ? op.value : undefined;
        if (expected === undefined) throw new PatchError('a "test" operation needs "value"');
        if (!jsonEqual(resolve(doc, tokens, path), expected)) {
          throw new PatchError(`test failed: "${path}" is not the value expected`);
        }
        break;
      }
      default:
        throw new PatchError(`operation ${n}: unknown op "${op.op}"`);
    }
  });
  return doc;
}

// --- The tree document ------------------------------------------------------

const EMPTY_TREE = { id: "root", label: "root", children: [] };

/** A new conversation's `{}` (or none) is the empty tree. */
function isBlank(doc) {
  return doc === null || doc === undefined || (isObject(doc) && Object.keys(doc).length === 0);
}

/** Whether `doc` is a tree of `{id, label?, children?}` nodes with unique ids. */
export function isTreeDocument(doc) {
  const seen = new Set();
  const check = (node, depth) => {
    if (!isObject(node) || typeof node.id !== "string" || node.id === "" || seen.has(node.id)) {
      return false;
    }
    if (depth > 200) return false;
    seen.add(node.id);
    if (has(node, "label") && typeof node.label !== "string") return false;
    if (!has(node, "children")) return true;
    return Array.isArray(node.children) && node.children.every((child) => check(child, depth + 1));
  };
  return check(doc, 0);
}

/** The tree as shown: the empty tree for a blank document. */
function viewed(doc) {
  return isBlank(doc) ? EMPTY_TREE : doc;
}

/** The indexes leading to node `id` (`[]` for the root), or null. */
export function findPath(doc, id) {
  const walk = (node, path) => {
    if (node.id === id) return path;
    const children = Array.isArray(node.children) ? node.children : [];
    for (let i = 0; i < children.length; i += 1) {
      const found = walk(children[i], [...path, i]);
      if (found) return found;
    }
    return null;
  };
  return isObject(doc) ? walk(doc, []) : null;
}

function nodeAt(doc, path) {
  return path.reduce((node, i) => node.children[i], doc);
}

const pointerOf = (path) => path.map((i) => `/children/${i}`).join("");

function allIds(doc) {
  const ids = new Set();
  const walk = (node) => {
    ids.add(node.id);
    (node.children || []).forEach(walk);
  };
  walk(doc);
  return ids;
}

/** As the tree agent makes ids: "Red Apples!" → "red-apples". */
export function slug(label) {
  return label
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean)
    .join("-");
}

function uniqueId(doc, label) {
  const ids = allIds(doc);
  const base = slug(label) || "node";
  if (!ids.has(base)) return base;
  let n = 2;
  while (ids.has(`${base}-${n}`)) n += 1;
  return `${base}-${n}`;
}

const labelOf = (node) => (typeof node.label === "string" && node.label !== "" ? node.label : node.id);

/** Counts a node's descendants. */
function countBelow(node) {
  return (node.children || []).reduce((sum, child) => sum + 1 + countBelow(child), 0);
}

/**
 * The patch that carries out `intent` on `doc` (the document as stored, so a
 * blank one is first replaced by the empty tree), or `{done: true}` when the
 * tree already is as the intent wants, or `{impossible: reason}`.
 * Intents: {kind: "add", parentId, id, label}, {kind: "rename", id, label},
 * {kind: "move", id, parentId}, {kind: "reorder", id, offset}, {kind: "remove", id}.
 */
export function planEdit(doc, intent) {
  const ops = [];
  if (isBlank(doc)) ops.push({ op: "replace", path: "", value: clone(EMPTY_TREE) });
  const tree = viewed(doc);
  if (!isTreeDocument(tree)) return { impossible: "the tree is not made of {id, label, children} nodes" };
  const path = findPath(tree, intent.id);
  switch (intent.kind) {
    case "add": {
      const parentPath = findPath(tree, intent.parentId);
      if (path) {
        const under = parentPath !== null && jsonEqual(path.slice(0, -1), parentPath);
        if (under && nodeAt(tree, path).label === intent.label) return { done: true };
        // The id was taken meanwhile by another node: the intent takes a
        // free one (kept, so a later attempt does not pick yet another).
        intent.id = uniqueId(tree, intent.label);
      }
      if (!parentPath) return { impossible: `node "${intent.parentLabel || intent.parentId}" is gone` };
      const parent = nodeAt(tree, parentPath);
      if (!Array.isArray(parent.children)) ops.push({ op: "add", path: `${pointerOf(parentPath)}/children`, value: [] });
      ops.push({
        op: "add",
        path: `${pointerOf(parentPath)}/children/-`,
        value: { id: intent.id, label: intent.label, children: [] },
      });
      return { ops };
    }
    case "rename": {
      if (!path) return { impossible: `node "${intent.oldLabel || intent.id}" is gone` };
      const node = nodeAt(tree, path);
      if (node.label === intent.label) return { done: true };
      ops.push({ op: has(node, "label") ? "replace" : "add", path: `${pointerOf(path)}/label`, value: intent.label });
      return { ops };
    }
    case "remove": {
      if (!path) return { done: true };
      if (path.length === 0) return { impossible: "the root node cannot be removed" };
      ops.push({ op: "remove", path: pointerOf(path) });
      return { ops };
    }
    case "move": {
      if (!path) return { impossible: `node "${intent.label || intent.id}" is gone` };
      if (path.length === 0) return { impossible: "the root node cannot be moved" };
      const target = findPath(tree, intent.parentId);
      if (!target) return { impossible: `node "${intent.parentLabel || intent.parentId}" is gone` };
      const parent = path.slice(0, -1);
      if (jsonEqual(target, parent)) return { done: true };
      if (target.length >= path.length && path.every((v, i) => v === target[i])) {
        return { impossible: "a node cannot be moved under itself or its own descendants" };
      }
      const targetNode = nodeAt(tree, target);
      if (!Array.isArray(targetNode.children)) ops.push({ op: "add", path: `${pointerOf(target)}/children`, value: [] });
      // A move's `path` is read after its `from` is removed (RFC 6902 §4.4):
      // a later sibling of the moved node, or a node under one, sits one
      // index lower by then.
      const index = path[path.length - 1];
      const after = [...target];
      if (after.length > parent.length && parent.every((v, i) => v === after[i]) && after[parent.length] > index) {
        after[parent.length] -= 1;
      }
      let from = path;
      if (after.length >= path.length && path.every((v, i) => v === after[i])) {
        // The new parent is the next sibling (or under it): its path after
        // the removal starts with `from`, which §4.4 forbids. The node first
        // moves to the end of its siblings, out of the way; the new parent
        // is then where `after` says (as the tree agent does it).
        const last = nodeAt(tree, parent).children.length - 1;
        ops.push({ op: "move", from: pointerOf(path), path: `${pointerOf(parent)}/children/-` });
        from = [...parent, last];
      }
      ops.push({ op: "move", from: pointerOf(from), path: `${pointerOf(after)}/children/-` });
      return { ops };
    }
    case "reorder": {
      if (!path) return { impossible: `node "${intent.label || intent.id}" is gone` };
      if (path.length === 0) return { impossible: "the root node has no siblings" };
      const parentPath = path.slice(0, -1);
      const siblings = nodeAt(tree, parentPath).children;
      const index = path[path.length - 1];
      const to = index + intent.offset;
      if (to < 0 || to >= siblings.length) return { impossible: "it is already at the end" };
      ops.push({ op: "move", from: pointerOf(path), path: `${pointerOf(parentPath)}/children/${to}` });
      return { ops };
    }
    default:
      return { impossible: `unknown edit "${intent.kind}"` };
  }
}

/** The intent in words, for notices. */
function describe(intent) {
  switch (intent.kind) {
    case "add":
      return `add "${intent.label}" under "${intent.parentLabel}"`;
    case "rename":
      return `rename "${intent.oldLabel}" to "${intent.label}"`;
    case "remove":
      return `remove "${intent.label}"`;
    case "move":
      return `move "${intent.label}" under "${intent.parentLabel}"`;
    case "reorder":
      return `move "${intent.label}" ${intent.offset < 0 ? "up" : "down"}`;
    default:
      return "edit the tree";
  }
}

// --- The view ---------------------------------------------------------------

let instances = 0;

/**
 * Mounts the tree of `conversationId` into `root`; `socket` is the page's
 * ChatSocket on that conversation (the view listens and sends on it but
 * does not close it). Returns the unmount.
 */
export function mountTree(root, { api, conversationId, socket }) {
  ensureStyles();
  instances += 1;
  const uid = `tree${instances}`;
  const state = {
    doc: null,
    version: null, // null until the first tree arrives
    loading: null, // the read in flight
    early: [], // tree_update frames that came before any tree
    selected: "root",
    collapsed: new Set(),
    queue: [], // intents waiting to be sent
    pending: null, // {intent, patch, base, rebases}
    mode: null, // the editor open: "add" | "rename" | "move" | "remove"
    connection: socket.connected ? "live" : "connecting",
    // Whether the socket's connection has told its tree (`session_ready`):
    // edits wait for it after a reconnect rather than go out on an old one.
    ready: socket.connected,
    unmounted: false,
  };

  // Layout: header (title, connection, version), notices, outline, editor.
  const status = el("span", { className: "tree-connection", "data-state": "connecting" });
  const versionText = el("span", { className: "tree-version" });
  const notices = el("div", { className: "tree-notices", role: "status", "aria-live": "polite" });
  const outline = el("div", { className: "tree-outline" });
  const editor = el("div", { className: "tree-editor" });
  const section = el(
    "section",
    { className: "tree-view", "aria-labelledby": `${uid}-title` },
    el("header", { className: "tree-header" },
      el("h2", { id: `${uid}-title`, text: "Tree" }),
      el("span", { className: "tree-meta" }, status, versionText)),
    notices,
    outline,
    editor,
  );
  root.append(section);

  // --- notices ---
  function notice(text, kind = "info") {
    const item = el("p", { className: `tree-notice tree-notice-${kind}`, "data-kind": kind },
      el("span", { text }),
      el("button", {
        type: "button",
        className: "tree-dismiss",
        "aria-label": "Dismiss notice",
        text: "×",
        onclick: () => item.remove(),
      }));
    notices.append(item);
    while (notices.children.length > 4) notices.firstElementChild.remove();
    if (kind === "info") setTimeout(() => item.remove(), 6000);
  }

  function showConnection() {
    const words = {
      live: "Live",
      connecting: "Connecting…",
      reconnecting: "Reconnecting…",
      offline: "Disconnected",
    };
    status.dataset.state = state.connection;
    status.textContent = words[state.connection] || state.connection;
    versionText.textContent = state.version === null ? "" : `version ${state.version}`;
  }

  // --- state changes ---
  function setTree(doc, version) {
    if (state.version !== null && version < state.version) return false;
    state.doc = doc;
    state.version = version;
    render();
    return true;
  }

  /** Reads the tree over HTTP; concurrent callers share one read. */
  function load() {
    if (state.loading) return state.loading;
    state.loading = api
      .request("GET", `/api/v1/conversations/${encodeURIComponent(conversationId)}`)
      .then((conversation) => {
        if (state.unmounted) return;
        setTree(conversation.tree, conversation.tree_version);
        const early = state.early.splice(0);
        early.forEach(onUpdate);
      })
      .catch((error) => {
        if (state.unmounted) return;
        notice(`The tree could not be read: ${error.message || error}`, "error");
        if (state.version === null) outline.replaceChildren(el("p", { className: "tree-empty", text: "The tree could not be read." }));
      })
      .finally(() => {
        state.loading = null;
        afterSync();
      });
    return state.loading;
  }

  function onReady(data) {
    if (data.session_id && data.session_id !== conversationId) return;
    if (typeof data.tree_version !== "number") return;
    // A new connection's truth: an edit whose answer was lost is rechecked.
    state.doc = data.initial_tree;
    state.version = data.tree_version;
    state.ready = true;
    render();
    state.early.splice(0).forEach(onUpdate);
    if (state.pending) {
      state.queue.unshift(state.pending.intent);
      state.pending = null;
    }
    pump();
  }

  function onUpdate(data) {
    if (typeof data.version !== "number") return;
    if (state.version === null) {
      state.early.push(data);
      if (!state.loading) load();
      return;
    }
    if (data.version <= state.version) return; // seen already
    if (data.version > state.version + 1) {
      // A version was missed: read the tree as it is now.
      state.early.push(data);
      load();
      return;
    }
    let doc;
    try {
      doc = applyPatch(state.doc, data.delta);
    } catch (error) {
      notice(`An update of the tree did not apply here (${error.message}); reloading it.`, "error");
      load();
      return;
    }
    const pending = state.pending;
    const mine = pending && data.version === pending.base + 1 && jsonEqual(data.delta, pending.patch);
    setTree(doc, data.version);
    afterSync();
    if (mine) {
      state.pending = null;
      renderEditor();
      if (pending.rebases > 0) {
        notice(`Re-applied on version ${data.version}: ${describe(pending.intent)}.`, "conflict-resolved");
      } else {
        notice(`Saved: ${describe(pending.intent)}.`);
      }
      pump();
    }
  }

  function onError(data) {
    const pending = state.pending;
    if (!pending) return;
    if (data.code === "stale_tree") {
      const current = Number(data.current_version);
      pending.rebases += 1;
      if (pending.rebases > MAX_REBASES) {
        state.pending = null;
        notice(`Conflict: the tree kept changing; your edit (${describe(pending.intent)}) was not applied. Try again.`, "error");
        pump();
        return;
      }
      notice(
        `Conflict: the tree changed to version ${current} while you edited version ${pending.base}. ` +
          `Your edit (${describe(pending.intent)}) is re-applied on the current tree.`,
        "conflict",
      );
      pending.waitFor = current;
      if (state.version !== null && state.version >= current) resend();
      else load();
      return;
    }
    const tree = ["invalid_patch", "patch_too_large", "tree_too_large", "not_found", "invalid_frame", "no_session"];
    if (!tree.includes(data.code)) return; // not about the edit (a turn's error)
    state.pending = null;
    notice(`Your edit (${describe(pending.intent)}) was refused: ${data.message || data.code}`, "error");
    load();
    pump();
  }

  /** After a read: a pending edit waiting for a newer tree goes again. */
  function afterSync() {
    const pending = state.pending;
    if (pending && pending.waitFor !== undefined && state.version !== null && state.version >= pending.waitFor) {
      resend();
    }
  }

  /** The pending intent, planned again on the current tree. */
  function resend() {
    const pending = state.pending;
    state.pending = null;
    delete pending.waitFor;
    submit(pending.intent, pending.rebases);
  }

  function edit(intent) {
    state.queue.push(intent);
    pump();
  }

  function pump() {
    if (state.pending || state.version === null || !state.ready || !socket.connected) return;
    const intent = state.queue.shift();
    if (intent) submit(intent, 0);
  }

  function submit(intent, rebases) {
    const plan = planEdit(state.doc, intent);
    if (plan.done) {
      if (rebases > 0) notice(`The current tree already does what your edit asked (${describe(intent)}).`, "conflict-resolved");
      pump();
      return;
    }
    if (plan.impossible) {
      notice(`Your edit (${describe(intent)}) could not be applied: ${plan.impossible}.`, "error");
      pump();
      return;
    }
    state.pending = { intent, patch: plan.ops, base: state.version, rebases };
    if (!socket.send("tree_edit", { patch: plan.ops, base_version: state.version })) {
      // Not connected: it goes first when the connection is back.
      state.pending = null;
      state.queue.unshift(intent);
    }
    renderEditor();
  }

  // --- rendering ---
  function tree() {
    return viewed(state.doc);
  }

  function render() {
    showConnection();
    if (state.version === null) {
      outline.replaceChildren(el("p", { className: "tree-empty", text: "Loading the tree…" }));
      return;
    }
    const doc = tree();
    if (!isTreeDocument(doc)) {
      state.selected = null;
      outline.replaceChildren(
        el("p", { className: "tree-empty", text: "This tree is not made of {id, label, children} nodes; it is shown as JSON and cannot be edited here." }),
        el("pre", { className: "views-json", text: JSON.stringify(doc, null, 2) }),
      );
      renderEditor();
      return;
    }
    if (!state.selected || !findPath(doc, state.selected)) state.selected = doc.id;
    const focused = document.activeElement && section.contains(document.activeElement)
      ? document.activeElement.dataset.focusKey
      : null;
    const list = el("ul", { className: "tree-list", "aria-label": "Tree outline" }, renderNode(doc, 1));
    outline.replaceChildren(list);
    renderEditor();
    if (focused) {
      const again = section.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  function renderNode(node, level) {
    const children = Array.isArray(node.children) ? node.children : [];
    const open = !state.collapsed.has(node.id);
    const label = labelOf(node);
    const selected = state.selected === node.id;
    const row = el("div", { className: "tree-row" });
    if (children.length) {
      row.append(el("button", {
        type: "button",
        className: "tree-node-toggle",
        "aria-expanded": open ? "true" : "false",
        "aria-label": `${open ? "Collapse" : "Expand"} ${label}`,
        "data-focus-key": `toggle:${node.id}`,
        text: open ? "▾" : "▸",
        onclick: () => {
          if (open) state.collapsed.add(node.id);
          else state.collapsed.delete(node.id);
          render();
        },
      }));
    } else {
      row.append(el("span", { className: "tree-leaf", "aria-hidden": "true", text: "•" }));
    }
    row.append(el("button", {
      type: "button",
      className: "tree-label",
      "aria-pressed": selected ? "true" : "false",
      "data-node-id": node.id,
      "data-focus-key": `label:${node.id}`,
      title: `id: ${node.id}`,
      text: label,
      onclick: () => {
        state.selected = node.id;
        state.mode = null;
        render();
      },
    }));
    if (children.length) {
      row.append(el("span", { className: "tree-count", text: `${children.length}` , "aria-label": `${children.length} children` }));
    }
    const item = el("li", {
      className: selected ? "tree-node tree-node-selected" : "tree-node",
      "data-node-id": node.id,
      "data-level": String(level),
    }, row);
    if (children.length && open) {
      item.append(el("ul", { className: "tree-children" }, children.map((child) => renderNode(child, level + 1))));
    }
    return item;
  }

  /** Rebuilds the editor, keeping what the person was typing or choosing. */
  function renderEditor() {
    const field = editor.querySelector("input, select");
    const kept = field && {
      mode: editor.dataset.mode,
      node: editor.dataset.node,
      name: field.name,
      value: field.value,
      focused: document.activeElement === field,
      start: field.selectionStart,
      end: field.selectionEnd,
    };
    buildEditor();
    editor.dataset.mode = state.mode || "";
    editor.dataset.node = state.selected || "";
    const same = kept && kept.mode === editor.dataset.mode && kept.node === editor.dataset.node;
    const again = same && editor.querySelector(`[name="${kept.name}"]`);
    if (!again) return;
    if (again.tagName === "SELECT") {
      if ([...again.options].some((o) => o.value === kept.value)) again.value = kept.value;
    } else {
      again.value = kept.value;
    }
    if (kept.focused) {
      again.focus();
      if (again.tagName === "INPUT" && kept.start !== null) again.setSelectionRange(kept.start, kept.end);
    }
  }

  function buildEditor() {
    const doc = tree();
    if (state.version === null || !isTreeDocument(doc)) {
      editor.replaceChildren();
      return;
    }
    const path = findPath(doc, state.selected);
    const node = nodeAt(doc, path);
    const label = labelOf(node);
    const isRoot = path.length === 0;
    const siblings = isRoot ? [] : nodeAt(doc, path.slice(0, -1)).children;
    const index = isRoot ? 0 : path[path.length - 1];
    const busy = state.pending ? " (saving…)" : "";
    const action = (mode, text, disabled = false) => el("button", {
      type: "button",
      "data-action": mode,
      "data-focus-key": `action:${mode}`,
      disabled: disabled || undefined,
      text,
      onclick: () => {
        state.mode = state.mode === mode ? null : mode;
        renderEditor();
        const first = editor.querySelector("input, select, .tree-confirm");
        if (first) first.focus();
      },
    });
    const reorder = (offset, text, disabled) => el("button", {
      type: "button",
      "data-action": offset < 0 ? "up" : "down",
      "data-focus-key": `action:${offset < 0 ? "up" : "down"}`,
      disabled: disabled || undefined,
      text,
      onclick: () => edit({ kind: "reorder", id: node.id, label, offset }),
    });
    const toolbar = el("div", { className: "tree-actions", role: "group", "aria-label": `Edit ${label}` },
      action("add", "Add child"),
      action("rename", "Rename"),
      action("move", "Move", isRoot),
      reorder(-1, "Move up", isRoot || index === 0),
      reorder(1, "Move down", isRoot || index >= siblings.length - 1),
      action("remove", "Remove", isRoot));
    const parts = [
      el("p", { className: "tree-selected" }, "Selected: ", el("strong", { text: label }), busy),
      toolbar,
    ];
    const form = (fields, submitText, onsubmit) => el("form", {
      className: "tree-form",
      onsubmit: (event) => {
        event.preventDefault();
        if (onsubmit()) {
          state.mode = null;
          renderEditor();
          const back = editor.querySelector(".tree-actions button");
          if (back) back.focus();
        }
      },
    }, fields, el("div", { className: "tree-form-buttons" },
      el("button", { type: "submit", text: submitText }),
      el("button", { type: "button", text: "Cancel", onclick: () => { state.mode = null; renderEditor(); } })));

    if (state.mode === "add") {
      const input = el("input", { id: `${uid}-new`, name: "label", required: true, maxlength: "200", autocomplete: "off" });
      parts.push(form([el("label", { for: `${uid}-new`, text: `Label of the new node under ${label}` }), input], "Add", () => {
        const text = input.value.trim();
        if (!text) return false;
        edit({ kind: "add", parentId: node.id, parentLabel: label, id: uniqueId(doc, text), label: text });
        return true;
      }));
    } else if (state.mode === "rename") {
      const input = el("input", { id: `${uid}-rename`, name: "label", required: true, maxlength: "200", autocomplete: "off" });
      input.value = typeof node.label === "string" ? node.label : "";
      parts.push(form([el("label", { for: `${uid}-rename`, text: `New label of ${label}` }), input], "Rename", () => {
        const text = input.value.trim();
        if (!text) return false;
        edit({ kind: "rename", id: node.id, oldLabel: label, label: text });
        return true;
      }));
    } else if (state.mode === "move" && !isRoot) {
      const select = el("select", { id: `${uid}-move`, name: "parent" });
      const inside = new Set([...allIds(node)]);
      const walk = (n, depth) => {
        if (inside.has(n.id)) return;
        const option = el("option", { value: n.id, text: `${"\u00a0\u00a0".repeat(depth)}${labelOf(n)}` });
        if (n.id === nodeAt(doc, path.slice(0, -1)).id) option.selected = true;
        select.append(option);
        (n.children || []).forEach((c) => walk(c, depth + 1));
      };
      walk(doc, 0);
      parts.push(form([el("label", { for: `${uid}-move`, text: `Move ${label} under` }), select], "Move", () => {
        const target = findPath(doc, select.value);
        if (!target) return false;
        edit({ kind: "move", id: node.id, label, parentId: select.value, parentLabel: labelOf(nodeAt(doc, target)) });
        return true;
      }));
    } else if (state.mode === "remove" && !isRoot) {
      const below = countBelow(node);
      const what = below === 0 ? `Remove ${label}?` : `Remove ${label} and the ${below} node${below === 1 ? "" : "s"} under it?`;
      parts.push(el("div", { className: "tree-form", role: "group", "aria-label": "Confirm removal" },
        el("p", { text: what }),
        el("div", { className: "tree-form-buttons" },
          el("button", {
            type: "button",
            className: "tree-confirm danger",
            text: "Remove",
            onclick: () => {
              edit({ kind: "remove", id: node.id, label });
              state.mode = null;
              renderEditor();
            },
          }),
          el("button", { type: "button", text: "Cancel", onclick: () => { state.mode = null; renderEditor(); } }))));
    }
    editor.replaceChildren(...parts);
  }

  // --- wiring ---
  const off = [
    socket.on("session_ready", onReady),
    socket.on("tree_update", onUpdate),
    socket.on("error", onError),
    socket.on("open", () => {
      state.connection = "live";
      showConnection();
    }),
    socket.on("close", (data) => {
      state.connection = data.retryIn === null ? "offline" : "reconnecting";
      state.ready = false;
      showConnection();
    }),
  ];
  render();
  load();

  return function unmount() {
    state.unmounted = true;
    off.forEach((unsubscribe) => unsubscribe());
    section.remove();
  };
}
