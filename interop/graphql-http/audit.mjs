// The GraphQL-over-HTTP server audits of the graphql-http package against a running govshare.
// Usage: GOVSHARE_AUDIT_KEY=<key> GOVSHARE_AUDIT_PURPOSE=<code> node audit.mjs http://127.0.0.1:PORT/graphql
// Every request carries the application key, the purpose and an operator (as a department application's would; a
// production govshare requires the operator, Art 22). Prints one JSON
// document: {"counts": {"ok", "notice", "warn", "error"}, "results": [{"id", "name", "status", "reason"}]}.
import { auditServer } from 'graphql-http';

const [url] = process.argv.slice(2);
const key = process.env.GOVSHARE_AUDIT_KEY;
const purpose = process.env.GOVSHARE_AUDIT_PURPOSE;
if (!url || !key || !purpose) {
  console.error('usage: GOVSHARE_AUDIT_KEY=… GOVSHARE_AUDIT_PURPOSE=… node audit.mjs URL');
  process.exit(2);
}

function fetchWithKey(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${key}`);
  headers.set('x-purpose', purpose);
  headers.set('x-operator', 'graphql-http-audit');
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithKey });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
const listed = [];
for (const result of results) {
  counts[result.status] += 1;
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = result.reason;
    entry.httpStatus = result.response.status;
    entry.contentType = result.response.headers.get('content-type');
    entry.body = await result.response.text().catch(() => '');
  }
  listed.push(entry);
}
console.log(JSON.stringify({ counts, results: listed }, null, 2));
