// The weights file: downloaded with progress, verified, kept in the Cache API and revalidated
// on later visits. Runs in the inference worker (workers have `fetch` and `caches` too).

const CACHE_NAME = 'bisenet-weights-v1';

// The validators a server gave with a response, kept with the cached copy so that a later visit
// can ask "has it changed?" instead of downloading the model again.
const VALIDATORS = [['ETag', 'If-None-Match'], ['Last-Modified', 'If-Modified-Since']];

const errorText = (e) => (e instanceof Error ? e.message : String(e));

// Reads a response body, reporting progress; refuses a body shorter than its Content-Length.
// A compressed response's Content-Length counts the compressed bytes, not those read here, so
// it gives neither a total nor a check.
async function readWithProgress(response, progress) {
  const encoded = Boolean(response.headers.get('Content-Encoding'));
  const total = encoded ? 0 : Number(response.headers.get('Content-Length')) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    progress(received, total);
  }
  if (total && received !== total) {
    throw new Error(`the model download stopped at ${received} of ${total} bytes; reload to retry`);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) { bytes.set(chunk, offset); offset += chunk.length; }
  return bytes;
}

/**
 * Returns `{ bytes, source }`: verified weight bytes and where they came from (`'network'` or
 * `'cache'`). A cached copy is revalidated with a conditional request when the server can be
 * reached: "not modified" keeps it, a new file replaces it (so a returning visitor gets an
 * updated model). Offline, or when the server fails, the cached copy is used.
 *
 * `verify(bytes)` throws with the reason a file is unusable (truncated, not a weights file...);
 * `progress(received, total)` follows the download; `notice(text)` tells the user when a new
 * file was refused in favour of the cached one.
 */
export async function loadWeights(url, { verify, progress, notice }) {
  const cache = 'caches' in self ? await caches.open(CACHE_NAME).catch(() => null) : null;
  let cached = null;
  const stored = cache && await cache.match(url);
  if (stored) {
    const bytes = new Uint8Array(await stored.arrayBuffer());
    try {
      verify(bytes);
      cached = { bytes, headers: stored.headers };
    } catch (e) {
      await cache.delete(url); // a bad cached copy is replaced, never used
    }
  }
  const fromCache = () => ({ bytes: cached.bytes, source: 'cache' });

  const conditions = {};
  for (const [validator, condition] of VALIDATORS) {
    const value = cached?.headers.get(validator);
    if (value) conditions[condition] = value;
  }
  let response;
  try {
    response = await fetch(url, { cache: 'no-store', headers: conditions });
  } catch (e) {
    if (cached) return fromCache();
    throw new Error(`the model ${url} could not be downloaded (${errorText(e)}); check the connection and reload`);
  }
  if (!response.ok) { // 304 "not modified" included
    if (cached) return fromCache();
    throw new Error(`the model ${url} could not be downloaded (HTTP ${response.status})`);
  }
  let bytes;
  try {
    bytes = await readWithProgress(response, progress);
    verify(bytes);
  } catch (e) {
    if (!cached) throw e;
    notice(`The new model could not be used (${errorText(e)}); running the copy saved earlier.`);
    return fromCache();
  }
  if (cache) {
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) };
    for (const [validator] of VALIDATORS) {
      const value = response.headers.get(validator);
      if (value) headers[validator] = value;
    }
    await cache.put(url, new Response(bytes, { headers })).catch(() => {});
  }
  return { bytes, source: 'network' };
}
