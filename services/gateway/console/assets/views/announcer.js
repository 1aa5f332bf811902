// Streamed text, announced politely to screen readers.
//
// The message list itself is not a live region: a reply arrives as dozens
// of small chunks a second, and a live region that changed with each would
// make a screen reader either stutter through fragments or queue minutes of
// speech. Instead, this visually hidden `role="status"` region
// (`aria-live="polite"`) is given the reply a sentence or so at a time, at
// most every 1.5 s, and the rest with the reply's outcome when it ends.

/** How long text gathers before it is announced (ms). */
const PACE_MS = 1500;
/** Text this long is announced even without a sentence's end. */
const LONG = 280;

export class Announcer {
  constructor(region) {
    this.region = region;
    this.pending = "";
    this.timer = 0;
  }

  say(text) {
    const words = text.trim();
    if (words) this.region.textContent = words;
  }

  /** A new reply begins; anything unsaid of the last one is dropped. */
  start() {
    clearTimeout(this.timer);
    this.timer = 0;
    this.pending = "";
  }

  add(text) {
    this.pending += text;
    if (!this.timer) this.timer = setTimeout(() => this.flush(), PACE_MS);
  }

  flush() {
    this.timer = 0;
    const ends = [...this.pending.matchAll(/[.!?…:;](?=\s)|\n/g)];
    const cut = ends.length ? ends[ends.length - 1].index + 1 : this.pending.length >= LONG ? this.pending.length : 0;
    if (cut) {
      this.say(this.pending.slice(0, cut));
      this.pending = this.pending.slice(cut);
    }
    if (this.pending.trim()) this.timer = setTimeout(() => this.flush(), PACE_MS);
  }

  /** The reply ended: the rest of its text, then how it ended. */
  finish(outcome) {
    clearTimeout(this.timer);
    this.timer = 0;
    const rest = this.pending.trim();
    this.pending = "";
    this.say([rest, outcome].filter(Boolean).join(" "));
  }

  dispose() {
    clearTimeout(this.timer);
  }
}
