// Server-sent events read from a fetch `Response`, so the console chooses
// the method, the body and the headers (`Last-Event-ID`, the session's),
// which `EventSource` cannot. Parsing follows the HTML standard's event
// stream rules: `data:` lines joined by newlines, `id:`, `event:`,
// comments, an event dispatched at a blank line, CR/LF/CRLF line ends.

/**
 * Calls `onEvent({id, event, data})` for each event of `response`, in order;
 * resolves when the stream ends (rejects when the connection fails or
 * `signal` aborts). `id` is the last id seen so far, as `EventSource` keeps it.
 */
export async function readEvents(response, onEvent, signal) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const abort = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", abort, { once: true });
  let buffer = "";
  let lastId = null;
  let event = "";
  let data = [];
  const line = (text) => {
    if (text === "") {
      if (data.length) onEvent({ id: lastId, event: event || "message", data: data.join("\n") });
      event = "";
      data = [];
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "id" && !value.includes("\0")) lastId = value;
    else if (field === "event") event = value;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      // A CR at the very end may be the first half of a CRLF: keep it.
      let match;
      const ends = /\r\n|\r(?!$)|\n/g;
      let start = 0;
      while ((match = ends.exec(buffer))) {
        line(buffer.slice(start, match.index));
        start = match.index + match[0].length;
      }
      buffer = buffer.slice(start);
    }
    if (signal?.aborted) throw new DOMException("aborted", "AbortError");
  } finally {
    signal?.removeEventListener("abort", abort);
  }
}
