// `node gateway.mjs <Patron /graphql URL> <fixtures.json>`: serves the two Node subgraphs,
// composes them with Patron's live `_service { sdl }` (@apollo/composition) and serves the
// supergraph with @apollo/gateway on @apollo/server, forwarding the client's Authorization
// header to every subgraph. All on 127.0.0.1, on free ports. Prints one JSON line once ready:
// {"gateway": url, "appointments": url, "reviews": url, "errors": [...], "hints": [...]};
// exits 1 if composition fails. Stops on SIGTERM or when stdin closes.
import { readFileSync } from 'node:fs';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { compose } from './composition.mjs';
import { appointmentsSchema, reviewsSchema } from './subgraphs.mjs';

const [patronUrl, fixturesPath] = process.argv.slice(2);
if (!patronUrl || !fixturesPath) {
  console.error('usage: node gateway.mjs <patron graphql url> <fixtures.json>');
  process.exit(2);
}
const fixtures = JSON.parse(readFileSync(fixturesPath, 'utf8'));
const listen = { host: '127.0.0.1', port: 0 };

const servers = [];
async function serve(server, options = {}) {
  servers.push(server);
  const { url } = await startStandaloneServer(server, { listen, ...options });
  return url;
}

// Errors as a client sees them: no stack traces, no inline traces (quiet, fewer bytes).
const quiet = { includeStacktraceInErrorResponses: false };
const subgraph = (schema) =>
  new ApolloServer({ schema, ...quiet, plugins: [ApolloServerPluginInlineTraceDisabled()] });
const appointments = await serve(subgraph(appointmentsSchema(fixtures)));
const reviews = await serve(subgraph(reviewsSchema(fixtures)));

const response = await fetch(patronUrl, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ query: '{ _service { sdl } }' }),
});
const body = await response.json();
if (!body.data?._service?.sdl) {
  console.error(`Patron did not answer _service { sdl }: ${JSON.stringify(body)}`);
  process.exit(1);
}
const composed = compose(body.data._service.sdl, { patron: patronUrl, appointments, reviews });
if (composed.errors.length > 0) {
  console.log(JSON.stringify({ errors: composed.errors, hints: composed.hints }));
  process.exit(1);
}

// The client's Authorization goes to every subgraph; Patron decides what it may read.
class ForwardAuthorization extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context.authorization) {
      request.http.headers.set('authorization', context.authorization);
    }
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: composed.supergraphSdl,
  buildService: ({ url }) => new ForwardAuthorization({ url }),
  logger: { debug() {}, info() {}, warn: console.error, error: console.error },
});
const gatewayUrl = await serve(new ApolloServer({ gateway, ...quiet }), {
  context: async ({ req }) => ({ authorization: req.headers.authorization }),
});

console.log(JSON.stringify({ gateway: gatewayUrl, appointments, reviews, errors: [], hints: composed.hints }));

async function stop() {
  await Promise.allSettled(servers.map((s) => s.stop()));
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
