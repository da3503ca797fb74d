// Requests to the dashboard's server. Every request carries the page's ?token= when it has one;
// every change carries the token the server put in the page, as the X-Primer-Token header.

const token = new URLSearchParams(location.search).get("token");
const pageToken = document.querySelector('meta[name="primer-token"]').content;

/** `url` with the page's ?token= added, when the page has one. */
export const withToken = (url) => token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;

/** The JSON answer to a request; a refusal throws its error. */
export const api = (url, options) => fetch(withToken(url), options).then(async (r) => {
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
});

/** POSTs `body` as JSON, with the page's token: a change. */
export const post = (url, body) => api(url, {
  method: "POST",
  headers: { "Content-Type": "application/json", "X-Primer-Token": pageToken },
  body: JSON.stringify(body ?? {}),
});
