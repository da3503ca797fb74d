// Values as the page's text.

/** A value as a cell shows it: numbers to `digits` decimals (4 by default), nothing for none. */
export const fmt = (v, digits) => v === undefined || v === null ? "" : typeof v === "number" ? +v.toFixed(digits ?? 4) : v;

/** Text from run directories (names, task paths) as HTML text, never markup. */
export const esc = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
