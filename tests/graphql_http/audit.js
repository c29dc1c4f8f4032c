// Runs graphql-http's server audits (GraphQL over HTTP) against a running gateway and prints
// the results as one JSON array on stdout:
//   [{"id", "name", "status": "ok"|"notice"|"warn"|"error", "reason", "response": {...}}]
//
//   node audit.js http://127.0.0.1:8000/graphql [Header: value ...]
//
// Each extra "Header: value" argument is sent with every audit request, as a client of the
// gateway sends it: the test passes `X-Patron-CSRF: 1`, the header that lets a GET query
// through Patron's CSRF prevention (README, "Production mode"). The audits run one after
// the other (the machine is small; their order is the library's).
import { serverAudits } from 'graphql-http';

const [url, ...headerArgs] = process.argv.slice(2);
if (!url) {
  console.error('usage: node audit.js URL [Header: value ...]');
  process.exit(2);
}

const extraHeaders = headerArgs.map((arg) => {
  const at = arg.indexOf(':');
  if (at < 1) {
    console.error(`not a header: ${arg}`);
    process.exit(2);
  }
  return [arg.slice(0, at).trim(), arg.slice(at + 1).trim()];
});

function fetchWithHeaders(input, init = {}) {
  const headers = new Headers(init.headers);
  for (const [name, value] of extraHeaders) {
    if (!headers.has(name)) headers.set(name, value);
  }
  return fetch(input, { ...init, headers });
}

async function describe(response) {
  if (!response) return null;
  let body = null;
  try {
    body = (await response.clone().text()).slice(0, 500);
  } catch {
    body = '(body already read)';
  }
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body,
  };
}

const results = [];
for (const audit of serverAudits({ url, fetchFn: fetchWithHeaders })) {
  const result = await audit.fn();
  results.push({
    id: result.id,
    name: result.name,
    status: result.status,
    reason: result.reason ?? null,
    response: result.status === 'ok' ? null : await describe(result.response),
  });
}
process.stdout.write(JSON.stringify(results) + '\n');
